"""Run Stadsmunt from a fresh clone with nothing installed but Python 3.11.

    python3 dev.py demo [ARGS]   runs `stadsmunt demo` (any `stadsmunt` command works;
                                     `python3 dev.py --help` lists them)
    python3 dev.py test [ARGS]   runs pytest with ARGS (from the top of the checkout:
                                     the whole suite)

Commands run in your folder, so relative paths are yours. This process becomes the
command (exec), so Ctrl-C, SIGTERM and the exit status are the command's own.

The whole suite (`test` from the top of the checkout, naming no test, marker or worker
count) runs as two pytest runs, one after the other: the tests that start no process,
spread over the cores by pytest-xdist, then those marked `processes` (tests/conftest.py),
one at a time and alone, as their timing checks need. The exit status is the worse of
the two; Ctrl-C and SIGTERM stop the run in progress and skip what is left.

On first use, and again whenever setup.cfg changes, it makes a virtual environment in
`.venv/` at the top of the checkout and installs the project into it; `test` also
installs the test extra there. Standard library only: this file must run before
anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".stadsmunt-installed"            # the project is installed
TEST_STAMP = VENV / ".stadsmunt-test-installed"  # and its test extra


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    digest = hashlib.sha256()
    for name in ("setup.cfg", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv(test: bool = False) -> Path:
    if sys.version_info < (3, 11):
        sys.exit(f"stadsmunt needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    wanted = _wanted_stamp()
    stamps = [STAMP, TEST_STAMP] if test else [STAMP]
    if _python().exists() and all(s.exists() and s.read_text() == wanted for s in stamps):
        return _python()
    print(f"setting up {VENV} (first run only) ...", file=sys.stderr, flush=True)
    if not _python().exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(_python()), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--upgrade", "pip", "setuptools", "wheel"], check=True)
    # running the product needs only its own requirements; the test tools come with `test`
    subprocess.run(pip + ["install", "-e", f"{ROOT}[test]" if test else str(ROOT)],
                   check=True)
    for stamp in stamps:
        stamp.write_text(wanted)
    return _python()


def _phases(args: list[str]) -> list[list[str]] | None:
    """The pytest arguments of the whole suite's two runs, or None for one run of `args`
    as given: a test named (a path), a marker or a worker count chosen, a debugger asked
    for, not from the top of the checkout, or a single core."""
    if Path.cwd().resolve() != ROOT or _cores() < 2:
        return None
    for arg in args:
        if not arg.startswith("-"):
            if Path(arg.partition("::")[0]).exists():
                return None
        elif arg.startswith(("-m", "-n", "--numprocesses", "--dist", "--pdb", "--trace",
                             "--collect-only", "--co", "--setup-plan")) or "xdist" in arg:
            return None
    return [[*args, "-n", str(_cores()), "-m", "not processes"], [*args, "-m", "processes"]]


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run_phases(python: Path, phases: list[list[str]], env: dict) -> int:
    """Runs pytest once per phase, as a child (two runs cannot both be exec'd): Ctrl-C
    in a terminal reaches it directly, SIGTERM to this process is passed on to it; either
    ends the run there. A failed test does not: the exit status is the worse run's."""
    stopped: list[int] = []
    child: subprocess.Popen | None = None

    def terminate(signum, _frame):
        stopped.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)
    # a handler of our own (not SIG_IGN, which the child would inherit): the terminal
    # sends Ctrl-C to pytest itself
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    signal.signal(signal.SIGTERM, terminate)
    codes = []
    for args in phases:
        sys.stdout.flush()
        child = subprocess.Popen([str(python), "-m", "pytest", *args], env=env)
        code = child.wait()
        if code < 0:                                # killed by a signal
            return 128 - code
        if stopped:
            return 128 + stopped[0]
        if code not in (0, 1, 5):                   # interrupted, internal or usage error
            return code
        codes.append(code)
        if code == 1 and any(a in ("-x", "--exitfirst") or a.startswith("--maxfail")
                             for a in args):
            break
    if 1 in codes:
        return 1
    return 0 if 0 in codes else 5                   # 5: no test ran at all


def main(argv: list[str]) -> int:
    test = argv[:1] == ["test"]
    try:
        python = ensure_venv(test)
    except KeyboardInterrupt:           # Ctrl-C during the first run's install
        return 130
    env = dict(os.environ)
    if test:
        # the tests import `tests.…` from the top of the checkout, wherever pytest runs
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
        # a test run starts hundreds of Python processes (validators, their gateways, the
        # CLI); with PYTHONDONTWRITEBYTECODE each would compile the project's sources
        # anew, a third of a validator's start. Their bytecode is kept in the venv instead,
        # still out of the checkout.
        if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
            del env["PYTHONDONTWRITEBYTECODE"]
            env["PYTHONPYCACHEPREFIX"] = str(VENV / "pycache")
        command = [str(python), "-m", "pytest", *argv[1:]]
        phases = _phases(argv[1:])
        if phases is not None:
            return _run_phases(python, phases, env)
    else:
        # the venv's editable install imports the project from any folder
        command = [str(python), "-m", "ops.cli", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":     # no exec there: wait; the console sends Ctrl-C to the child too
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return subprocess.call(command, env=env)
    # exec, not a child: no wrapper is left to catch Ctrl-C, swallow the command's last
    # output or die of SIGTERM while the command (and a demo's validators) run on
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
