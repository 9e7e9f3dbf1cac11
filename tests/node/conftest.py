"""Shared fixtures of the ledger's tests."""
from __future__ import annotations

import pytest

from ledger_kit import keypair, make_genesis
from node.genesis import Genesis
from node.keys import Keypair


@pytest.fixture
def admin() -> Keypair:
    return keypair("admin")


@pytest.fixture
def genesis(admin) -> Genesis:
    return make_genesis(admin)
