"""Invariants are assertions: under `python -O` they would vanish, so the packages that
hold them refuse to run there (crash rather than limp)."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["consensus", "chaincode", "node"])
def test_a_package_with_invariants_refuses_python_O(package):
    done = subprocess.run([sys.executable, "-O", "-c", f"import {package}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{package} refuses to run under python -O" in done.stderr


def test_without_O_they_import():
    done = subprocess.run([sys.executable, "-c", "import consensus, chaincode, node"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
