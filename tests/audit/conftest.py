"""Fixtures of the audit's tests: a small certified log, built once per session by
executing real signed transactions through node.executor, with checkpoints."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "node"))

from audit_kit import build_log  # noqa: E402


@pytest.fixture(scope="session")
def logged(tmp_path_factory):
    """(validator folder's data path, genesis) of the story log; read-only for tests."""
    path = tmp_path_factory.mktemp("log") / "data"
    genesis = build_log(path)
    return path, genesis
