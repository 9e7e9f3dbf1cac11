"""Run Stadsmunt from a fresh clone with nothing installed but Python 3.11.

    python3 ops/dev.py demo [ARGS]   runs `stadsmunt demo` (any `stadsmunt` command works;
                                     `python3 ops/dev.py --help` lists them)
    python3 ops/dev.py test [ARGS]   runs pytest with ARGS (from the top of the checkout:
                                     the whole suite)

Commands run in your folder, so relative paths are yours. This process becomes the
command (exec), so Ctrl-C, SIGTERM and the exit status are the command's own.

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

ROOT = Path(__file__).resolve().parent.parent
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
        command = [str(python), "-m", "pytest", *argv[1:]]
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
