"""Run Stadsmunt from a fresh clone with nothing installed but Python 3.11.

    python3 ops/dev.py demo [ARGS]   runs `stadsmunt demo` (any `stadsmunt` command works)
    python3 ops/dev.py test [ARGS]   runs the test suite (ARGS go to pytest)

On first use, and again whenever setup.cfg changes, it makes a virtual environment in
`.venv/` at the top of the checkout and installs the project with its test extra into it.
Standard library only: this file must run before anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".stadsmunt-installed"


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    digest = hashlib.sha256()
    for name in ("setup.cfg", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv() -> Path:
    if sys.version_info < (3, 11):
        sys.exit(f"stadsmunt needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    wanted = _wanted_stamp()
    if STAMP.exists() and STAMP.read_text() == wanted and _python().exists():
        return _python()
    print(f"setting up {VENV} (first run only) ...", file=sys.stderr, flush=True)
    if not _python().exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(_python()), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--upgrade", "pip", "setuptools", "wheel"], check=True)
    subprocess.run(pip + ["install", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)
    return _python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    python = ensure_venv()
    if argv[0] == "test":
        command = [str(python), "-m", "pytest", *argv[1:]]
    else:
        command = [str(python), "-m", "ops.cli", *argv]
    os.chdir(ROOT)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
