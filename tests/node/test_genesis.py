"""Genesis: validation, the JSON form, the canonical bytes and the hash (node/genesis.py)."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import msgpack
import pytest
from hypothesis import given, strategies as st

from ledger_kit import keypair
from node.genesis import (DEFAULT_POLICIES, Genesis, GenesisError, Organisation, Validator,
                          from_json, load)

KEYS = [keypair(f"v{i}").public for i in range(8)]


def make(**change) -> Genesis:
    fields = dict(chain="heerlen", city="Heerlen", coin_name="Heerlens Heitje",
                  coin_symbol="HHT",
                  validators=tuple(Validator(f"v{i}", KEYS[i]) for i in range(4)),
                  admins=(keypair("admin").public,),
                  organisations=tuple(Organisation(f"v{i}", (keypair(f"s{i}").public,))
                                      for i in range(4)))
    fields.update(change)
    return Genesis(**fields)


def test_default_policies_are_the_volunteer_limits_2021_to_2025():
    assert [p["year"] for p in make().policies] == [2021, 2022, 2023, 2024, 2025]
    assert make().policies[-1] == {"year": 2025, "hourly_cap_21plus": 560,
                                   "hourly_cap_under21": 330, "monthly_cap": 21_000,
                                   "yearly_cap": 210_000}


def test_the_hash_is_sha256_of_the_tag_and_the_canonical_map():
    g = make()
    canonical = g.canonical()
    assert g.hash() == hashlib.sha256(b"stadsmunt/genesis/v1" + canonical).digest()
    decoded = msgpack.unpackb(canonical)
    assert list(decoded) == sorted(decoded)
    assert decoded["validators"][0] == {"key": KEYS[0], "name": "v0"}
    assert decoded["rules"] == 1 and decoded["v"] == 1


@pytest.mark.parametrize("change", [
    {"chain": "heerlen-2"}, {"city": "Maastricht"}, {"coin_name": "Munt"},
    {"coin_symbol": "MNT"}, {"admins": (KEYS[7],)}, {"rules_version": 2},
    {"checkpoint_interval": 65}, {"policies": DEFAULT_POLICIES[:-1]},
    {"validators": tuple(Validator(f"w{i}", KEYS[i]) for i in range(4))},
])
def test_every_field_changes_the_hash(change):
    assert make(**change).hash() != make().hash()


def test_json_form_round_trips_to_the_same_hash(tmp_path):
    g = make(policies=DEFAULT_POLICIES + ({"year": 2026, "hourly_cap_21plus": 560,
                                           "hourly_cap_under21": 330, "monthly_cap": 21_000,
                                           "yearly_cap": 210_000,
                                           "programme_yearly_cap": 150_000},))
    path = tmp_path / "genesis.json"
    g.save(path)
    again = load(path)
    assert again == g and again.hash() == g.hash()
    assert json.loads(path.read_text())["validators"][0]["key"] == KEYS[0].hex()


@given(st.from_regex(r"[a-z0-9-]{1,32}", fullmatch=True), st.integers(1, 7),
       st.integers(1, 1000))
def test_any_valid_genesis_survives_its_json_form(chain, admins, interval):
    g = make(chain=chain, admins=tuple(KEYS[:admins]), checkpoint_interval=interval)
    assert from_json(g.to_json()).hash() == g.hash()


@pytest.mark.parametrize("change, message", [
    ({"chain": "Heerlen"}, "chain"),
    ({"chain": "x" * 33}, "chain"),
    ({"city": ""}, "city"),
    ({"coin_symbol": "x" * 13}, "coin symbol"),
    ({"validators": ()}, "at least one validator"),
    ({"validators": tuple(Validator(f"v{i}", KEYS[i]) for i in range(3))}, "at least 4"),
    ({"validators": tuple(Validator("same", KEYS[i]) for i in range(4))}, "names repeat"),
    ({"validators": tuple(Validator(f"v{i}", KEYS[0]) for i in range(4))}, "keys repeat"),
    ({"validators": (Validator("bad name!", KEYS[0]),)}, "name"),
    ({"validators": (Validator("v", b"short"),)}, "32-byte key"),
    ({"admins": ()}, "at least one admin"),
    ({"admins": (KEYS[0], KEYS[0])}, "admin keys repeat"),
    ({"rules_version": 0}, "rules version"),
    ({"checkpoint_interval": 0}, "checkpoint interval"),
    ({"policies": DEFAULT_POLICIES[::-1]}, "year order"),
    ({"policies": DEFAULT_POLICIES[:1] * 2}, "year order"),
    ({"policies": (dict(DEFAULT_POLICIES[0], monthly_cap=999_999),)}, "monthly cap above"),
    ({"policies": (dict(DEFAULT_POLICIES[0], programme_yearly_cap=999_999),)},
     "programme cap above"),
    ({"policies": (dict(DEFAULT_POLICIES[0], yearly_cap=-1),)}, "yearly_cap"),
    ({"policies": (dict(DEFAULT_POLICIES[0], year=1999),)}, "year must be"),
    ({"policies": (dict(DEFAULT_POLICIES[0], bonus=1),)}, "a policy has"),
])
def test_a_genesis_that_breaks_a_rule_is_refused_naming_the_field(change, message):
    with pytest.raises(GenesisError, match=message):
        make(**change)


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ("[]", "JSON object"),
    ('{"chain": "x"}', "needs chain"),
    ('{"chain": "x", "city": "c", "coin": {"name": "n"}, "validators": [], "admins": []}',
     "coin must be"),
    ('{"chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [{"name": "v", "key": "zz"}], "admins": []}', "64 hex"),
    ('{"chain": "x", "extra": 1}', "unknown genesis fields"),
])
def test_a_bad_genesis_file_is_refused_with_a_clear_error(text, message):
    with pytest.raises(GenesisError, match=message):
        from_json(text)


def test_validator_addresses_are_not_part_of_genesis():
    names = {f.name for f in dataclasses.fields(Genesis)} | {f.name for f in
                                                            dataclasses.fields(Validator)}
    assert not names & {"address", "host", "port", "peer", "gateway"}
