"""`python3 dev.py`, the README's way to run Stadsmunt from a fresh clone, as real
processes: a command runs in the caller's folder; `--help` is the commands' help; the
first run installs what running the product needs and `test` adds the test extra;
SIGTERM or SIGINT to the wrapper, and Ctrl-C in a terminal, stop the demo and all its
validators with the demo's last words and no traceback; `stadsmunt --version`.

The wrapper under test is a copy of dev.py in a throwaway checkout (its setup.cfg and
pyproject.toml copied too), whose `.venv/bin/python` is a script that logs its arguments,
answers pip with success and hands everything else to this venv's Python: so no test
installs anything, nor touches the shared `.venv`."""
from __future__ import annotations

import configparser
import importlib.metadata
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clientkit import REPO, run_cli

VALIDATORS = 4


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir(parents=True)
    shutil.copy(REPO / "dev.py", root / "dev.py")
    for name in ("setup.cfg", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> "{root}/calls.log"\n'
                      f'if [ "$1 $2" = "-m pip" ]; then exit 0; fi\n'
                      f'exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return root


def wrapper(root: Path) -> list[str]:
    return [sys.executable, str(root / "dev.py")]


def dev(root: Path, *args: str, cwd: Path, timeout_s: float = 60.0):
    return subprocess.run([*wrapper(root), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout_s)


def installs(root: Path) -> list[str]:
    """The project installs the wrapper asked pip for: what follows `install -e`."""
    log = root / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split(" install -e ", 1)[1] for line in lines if " install -e " in line]


def setup_cfg_version() -> str:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    return config["metadata"]["version"]


def test_a_command_runs_in_the_callers_folder(checkout, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    done = dev(checkout, "keygen", "--out", "my.key", cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "my.key").is_file()
    assert not (checkout / "my.key").exists() and not (REPO / "my.key").exists()


def test_help_is_the_commands_help(checkout, tmp_path):
    done = dev(checkout, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: stadsmunt")
    for command in ("demo", "keygen", "client", "audit"):
        assert command in done.stdout
    assert "fresh clone" not in done.stdout           # the wrapper's own docstring


def test_the_first_run_installs_the_product_and_test_adds_the_test_extra(checkout, tmp_path):
    done = dev(checkout, "--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert installs(checkout) == [str(checkout)]
    (tmp_path / "test_one.py").write_text(
        "import sys\n"
        "def test_the_checkout_is_importable():\n"
        f"    assert {str(checkout)!r} in sys.path\n")
    for _ in range(2):                       # the second run finds both installs done
        done = dev(checkout, "test", "-q", "-p", "no:cacheprovider", "test_one.py",
                   cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 passed" in done.stdout
        assert installs(checkout) == [str(checkout), f"{checkout}[test]"]
    assert dev(checkout, "--version", cwd=tmp_path).returncode == 0
    assert installs(checkout) == [str(checkout), f"{checkout}[test]"]


def test_version_is_the_packages():
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"stadsmunt {importlib.metadata.version('stadsmunt')}\n"
    assert done.stdout == f"stadsmunt {setup_cfg_version()}\n"


def test_version_without_the_package_installed_is_setup_cfgs(monkeypatch):
    from ops import cli

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert cli.version() == setup_cfg_version()


# --- signals, with the demo and its four validators -------------------------------------

def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent, start time, state) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[19], fields[0]


def process_tree(root: int) -> set[tuple[int, str]]:
    """`root` and every process below it, as (pid, start time): a pid alone may be reused."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            parents[int(entry.name)] = stat
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in parents:
            tree.add((pid, parents[pid][1]))
            todo += [child for child, (parent, _, _) in parents.items() if parent == pid]
    return tree


def alive(tree) -> list[int]:
    return [pid for pid, start in tree
            if (stat := _stat(pid)) and stat[1] == start and stat[2] != "Z"]


def wait_until_gone(tree, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := alive(tree)) and time.monotonic() < deadline:
        time.sleep(0.1)                      # polls a condition until a deadline
    return left


def kill_what_is_left(tree) -> None:
    """A failed test's leftovers, by pid: the processes this test started."""
    for pid in alive(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def read_until(fd: int, text: str | None, out: str, timeout_s: float) -> str:
    """Output of `fd` until `text` appears, or until its end when `text` is None."""
    deadline = time.monotonic() + timeout_s
    while text is None or text not in out:
        assert time.monotonic() < deadline, f"waited for {text!r}:\n" + out[-3000:]
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:                      # a terminal's end: EIO
            chunk = b""
        if not chunk:
            assert text is None, f"ended before {text!r}:\n" + out[-3000:]
            return out
        out += chunk.decode(errors="replace")
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_wrapper_stops_the_demo_and_every_validator(checkout, tmp_path,
                                                                    signum):
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = subprocess.Popen([*wrapper(checkout), "demo"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "TMPDIR": str(temp)},
                               start_new_session=True)
    tree: set = set()
    try:
        fd = process.stdout.fileno()
        out = read_until(fd, "are up and linked", "", 120)
        tree = process_tree(process.pid)
        assert len(tree) >= 1 + VALIDATORS, tree
        process.send_signal(signum)          # as `kill` or a supervisor sends it
        out = read_until(fd, None, out, 60)
        assert process.wait(30) == 0, out[-3000:]
    finally:
        kill_what_is_left(tree)
        if process.poll() is None:
            process.kill()
        process.wait(30)
        process.stdout.close()
    assert wait_until_gone(tree, 30) == [], out[-3000:]
    assert "Traceback" not in out
    assert "stopped; removed the network's folder" in out
    assert list(temp.iterdir()) == []        # nobody's key is left behind


def test_ctrl_c_in_a_terminal_stops_the_demo_with_its_last_words(checkout, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    argv = [*wrapper(checkout), "demo"]
    env = {**os.environ, "TMPDIR": str(temp)}
    pid, fd = pty.fork()
    if pid == 0:        # the child: the foreground process of a terminal, as from a shell
        try:
            os.chdir(tmp_path)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    tree: set = set()
    status = None
    try:
        out = read_until(fd, "are up and linked", "", 120)
        tree = process_tree(pid)
        assert len(tree) >= 1 + VALIDATORS, tree
        os.write(fd, b"\x03")       # Ctrl-C: the terminal sends SIGINT to its foreground
        out = read_until(fd, "stopping the validators", out, 60)
        os.write(fd, b"\x03")       # an impatient second one while they stop
        out = read_until(fd, None, out, 60)
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            done, raw = os.waitpid(pid, os.WNOHANG)
            status = os.waitstatus_to_exitcode(raw) if done else None
            time.sleep(0.05)                 # polls a condition until a deadline
    finally:
        kill_what_is_left(tree)
        if status is None:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(fd)
    assert status == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert "stopped; removed the network's folder" in out      # the last line is there
    assert wait_until_gone(tree, 30) == [], out[-3000:]
    assert list(temp.iterdir()) == []
