"""Shared fixtures of the ledger's tests: deterministic keys and a small genesis."""
from __future__ import annotations

import hashlib

import pytest

from node.genesis import Genesis, Validator
from node.keys import Keypair

CHAIN = "heerlen-test"


def keypair(name: str) -> Keypair:
    """A key derived from a name, so tests are reproducible without randomness."""
    return Keypair.from_seed(hashlib.sha256(b"test-key/" + name.encode()).digest())


@pytest.fixture
def admin() -> Keypair:
    return keypair("admin")


@pytest.fixture
def genesis(admin) -> Genesis:
    validators = tuple(Validator(name, keypair(name).public)
                       for name in ("municipality", "cbs", "brightlands", "vng"))
    return Genesis(chain=CHAIN, city="Heerlen", coin_name="Heerlens Heitje",
                   coin_symbol="HHT", validators=validators, admins=(admin.public,),
                   checkpoint_interval=4)
