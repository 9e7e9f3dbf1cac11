"""The arrows of the tree (README.md, "The tree"): consensus, chaincode and protocol are
pure leaves that import nothing else of the project; node may use all three; gateway
uses node; the client uses only protocol, so an app that imports it loads no part of
the server; ops uses everything; nothing imports upward. Checked on the source with the
ast module, so it holds for every import statement, also those inside functions; and
once by importing the client in a fresh interpreter."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("consensus", "chaincode", "protocol", "node", "gateway", "client", "research",
            "ops", "bench")
PURE = ("consensus", "chaincode", "protocol")

# what each package may import among the project's own packages
ALLOWED = {
    "consensus": {"consensus"},
    "chaincode": {"chaincode"},
    "protocol": {"protocol"},
    "node": {"node", "consensus", "chaincode", "protocol"},
    "gateway": {"gateway", "node", "consensus", "chaincode", "protocol", "research"},
    "client": {"client", "protocol"},
    # CBS's dataset: rows from verified events (the audit runs in ops), periods of the
    # chaincode's calendar
    "research": {"research", "chaincode"},
    # the command line; `stadsmunt bench` runs bench/network.py
    "ops": set(PACKAGES),
    # measurements over everything: local networks come from ops/network.py, never
    # from the rest of the command line
    "bench": set(PACKAGES) - {"ops"} | {"ops.network", "ops.errors"},
}

# what the pure packages may not touch: IO, the clock, randomness, threads, processes
IMPURE = {"asyncio", "time", "random", "secrets", "os", "socket", "threading",
          "multiprocessing", "subprocess", "lmdb", "aiohttp", "uuid", "io",
          "pathlib", "shutil", "tempfile", "signal", "select", "selectors", "logging",
          "structlog", "concurrent", "sys", "nacl", "urllib", "http", "zoneinfo"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            found.append((node.lineno, "__import__"))
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_point_down_only(package):
    wrong = []
    for path in sources(package):
        for line, module in imported_modules(path):
            top, allowed = module.split(".")[0], ALLOWED[package]
            if top in PACKAGES and top not in allowed and \
                    not any(module == a or module.startswith(a + ".") for a in allowed):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "imports against the architecture's arrows:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_do_no_io_read_no_clock_draw_no_randomness(package):
    wrong = []
    for path in sources(package):
        for line, module in imported_modules(path):
            if module == "__import__" or module.split(".")[0] in IMPURE:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, f"{package}/ must stay pure:\n" + "\n".join(wrong)


CLOCK_CALLS = (".now(", ".today(", ".utcnow(", "time.time", "perf_counter", "monotonic")


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_never_ask_for_the_time(package):
    """datetime is allowed for calendar arithmetic on a time passed in, never to read
    the clock."""
    wrong = [f"{path.relative_to(ROOT)}: {call}" for path in sources(package)
             for call in CLOCK_CALLS if call in path.read_text()]
    assert not wrong, f"{package}/ reads the clock:\n" + "\n".join(wrong)


def test_the_checker_sees_an_impure_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import time\n    from os import path\n")
    assert [m for _, m in imported_modules(sample)] == ["time", "os"]


def test_importing_the_client_loads_no_part_of_the_server():
    """What `import client` loads, in a fresh interpreter: of the project, the client and
    the protocol only (not the gateway, the node, the chaincode or consensus), and of
    aiohttp, its HTTP client, never its server (aiohttp.web)."""
    code = "import json, sys, client; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    ours = {m.split(".")[0] for m in loaded} & set(PACKAGES)
    assert ours == {"client", "protocol"}, sorted(m for m in loaded
                                                  if m.split(".")[0] in PACKAGES)
    assert "aiohttp" in loaded
    assert not [m for m in loaded if m == "aiohttp.web" or m.startswith("aiohttp.web_")]
