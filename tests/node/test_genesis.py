"""Genesis: validation, the JSON form, the canonical bytes and the hash (node/genesis.py)."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import msgpack
import pytest
from hypothesis import given, strategies as st

import chaincode
from chaincode import state as cst
from ledger_kit import keypair
from protocol import codec
from node.genesis import (DEFAULT_POLICIES, Genesis, GenesisError, GenesisValidator,
                          Organisation, from_json, from_map, load)

KEYS = [keypair(f"v{i}").public for i in range(8)]
STEWARDS = [keypair(f"s{i}").public for i in range(8)]
ADMIN = keypair("admin").public


def make(**change) -> Genesis:
    fields = dict(chain="heerlen", city="Heerlen", coin_name="Heerlens Heitje",
                  coin_symbol="HHT",
                  validators=tuple(GenesisValidator(f"v{i}", KEYS[i]) for i in range(4)),
                  admins=(ADMIN,),
                  organisations=tuple(Organisation(f"v{i}", (STEWARDS[i],))
                                      for i in range(4)))
    fields.update(change)
    return Genesis(**fields)


def law(**thresholds) -> dict:
    """The default constitution of make()'s four organisations, with some thresholds changed."""
    constitution = chaincode.default_constitution([f"v{i}" for i in range(4)])
    constitution["thresholds"].update(thresholds)
    return constitution


def genesis_json(**change) -> str:
    """make()'s JSON form with top-level fields changed (None removes one)."""
    data = json.loads(make().to_json())
    data.update(change)
    return json.dumps({k: v for k, v in data.items() if v is not None})


def test_default_policies_are_the_volunteer_limits_2021_to_2026():
    assert [p["year"] for p in make().policies] == [2021, 2022, 2023, 2024, 2025, 2026]
    assert make().policies[-2] == {"year": 2025, "hourly_cap_21plus": 560,
                                   "hourly_cap_under21": 330, "monthly_cap": 21_000,
                                   "yearly_cap": 210_000}
    assert make().policies[-1] == {"year": 2026, "hourly_cap_21plus": 575,
                                   "hourly_cap_under21": 340, "monthly_cap": 22_000,
                                   "yearly_cap": 220_000}


def test_the_default_constitution_is_the_table_for_the_number_of_organisations():
    assert make().constitution == {
        "organisations": ["v0", "v1", "v2", "v3"], "recovery_delay_ms": 72 * 3_600_000,
        "thresholds": {"policy.set": 3, "member.citizen": 0, "member.merchant": 0,
                       "member.privileged": 3, "member.recover": 2, "validators.set": 3,
                       "rules.activate": 3, "constitution.set": 4}}
    one = make(validators=(GenesisValidator("v0", KEYS[0]),),
               organisations=(Organisation("v0", (STEWARDS[0],)),))
    assert one.constitution["thresholds"] == {
        "policy.set": 1, "member.citizen": 0, "member.merchant": 0, "member.privileged": 1,
        "member.recover": 1, "validators.set": 1, "rules.activate": 1, "constitution.set": 1}


def test_a_validator_without_an_organisation_belongs_to_the_one_named_as_it():
    assert [v.organisation for v in make().validators] == ["v0", "v1", "v2", "v3"]
    shared = make(validators=tuple(GenesisValidator(f"w{i}", KEYS[i], "v1") for i in range(4)))
    assert {v.organisation for v in shared.validators} == {"v1"}


def test_the_hash_is_sha256_of_the_tag_and_the_canonical_map():
    g = make()
    canonical = g.canonical()
    assert g.hash() == hashlib.sha256(b"stadsmunt/genesis/v1" + canonical).digest()
    decoded = msgpack.unpackb(canonical)
    assert list(decoded) == sorted(decoded) == [
        "admins", "chain", "checkpoint_interval", "city", "coin", "constitution",
        "organisations", "policies", "rules", "v", "validators"]
    assert decoded["validators"][0] == {"key": KEYS[0], "name": "v0", "organisation": "v0"}
    assert list(decoded["validators"][0]) == ["key", "name", "organisation"]
    assert decoded["organisations"][0] == {"id": "v0", "stewards": [STEWARDS[0]]}
    assert decoded["constitution"] == g.constitution
    assert list(decoded["constitution"]) == ["organisations", "recovery_delay_ms", "thresholds"]
    assert list(decoded["constitution"]["thresholds"]) == sorted(g.constitution["thresholds"])
    assert decoded["rules"] == 1 and decoded["v"] == 2
    assert from_map(codec.unpack(canonical)).canonical() == canonical


def test_a_canonical_map_of_format_1_is_refused():
    old = codec.unpack(make().canonical())
    old["v"] = 1
    with pytest.raises(GenesisError, match="format 1"):
        from_map(old)


def test_the_state_before_block_1_holds_admins_stewards_constitution_validators_policies():
    g = make()
    writes, acc = g.state()
    unpack = cst.unpack
    assert unpack(writes[cst.member_key(ADMIN)]) == {"role": "admin", "active": True,
                                                      "balance": 0}
    assert unpack(writes[cst.member_key(STEWARDS[2])]) == {
        "role": "steward", "active": True, "balance": 0, "organisation": "v2"}
    assert writes[cst.steward_key("v2", STEWARDS[2])] == b""
    assert writes[b"s/\x02v2" + STEWARDS[2]] == b""
    assert unpack(writes[b"g/admins"]) == 1
    assert unpack(writes[b"g/constitution"]) == g.constitution
    assert unpack(writes[b"g/validators"]) == [
        {"key": KEYS[i], "name": f"v{i}", "organisation": f"v{i}"} for i in range(4)]
    assert unpack(writes[b"g/policy-years"]) == [2021, 2022, 2023, 2024, 2025, 2026]
    assert unpack(writes[cst.policy_key(2026)])["monthly_cap"] == 22_000
    assert len(writes) == 1 + 2 * 4 + 3 + 1 + 6     # members, steward index, g/, years, p/
    assert acc == chaincode.root.acc_of(writes.items())


@pytest.mark.parametrize("change", [
    {"chain": "heerlen-2"}, {"city": "Maastricht"}, {"coin_name": "Munt"},
    {"coin_symbol": "MNT"}, {"admins": (KEYS[7],)},   # (one rules version runs: 1)
    {"checkpoint_interval": 65}, {"policies": DEFAULT_POLICIES[:-1]},
    {"validators": tuple(GenesisValidator(f"w{i}", KEYS[i], f"v{i}") for i in range(4))},
    {"validators": tuple(GenesisValidator(f"v{i}", KEYS[i], "v0") for i in range(4))},
    {"organisations": tuple(Organisation(f"v{i}", (STEWARDS[i],) + (STEWARDS[7],) * (i == 0))
                            for i in range(4))},
    {"organisations": tuple(Organisation(f"v{i}", (STEWARDS[i + 1],)) for i in range(4))},
    {"organisations": tuple(Organisation(f"v{i}", (STEWARDS[i],)) for i in range(5))},
    {"constitution": law(**{"member.merchant": 2})},
    {"constitution": dict(law(), recovery_delay_ms=48 * 3_600_000)},
])
def test_every_field_changes_the_hash(change):
    assert make(**change).hash() != make().hash()


def test_json_form_round_trips_to_the_same_hash(tmp_path):
    g = make(policies=DEFAULT_POLICIES + ({"year": 2027, "hourly_cap_21plus": 560,
                                           "hourly_cap_under21": 330, "monthly_cap": 21_000,
                                           "yearly_cap": 210_000,
                                           "programme_yearly_cap": 150_000},))
    path = tmp_path / "genesis.json"
    g.save(path)
    again = load(path)
    assert again == g and again.hash() == g.hash()
    data = json.loads(path.read_text())
    assert data["format"] == 2
    assert data["validators"][0] == {"name": "v0", "key": KEYS[0].hex(), "organisation": "v0"}
    assert data["organisations"][0] == {"id": "v0", "stewards": [STEWARDS[0].hex()]}
    assert data["constitution"] == {"thresholds": g.constitution["thresholds"],
                                    "recovery_delay_ms": 72 * 3_600_000}


def test_a_json_form_without_a_constitution_gets_the_defaults_and_one_with_it_keeps_it():
    assert from_json(genesis_json(constitution=None)).hash() == make().hash()
    changed = make(constitution=dict(law(**{"member.citizen": 1}), recovery_delay_ms=0))
    assert from_json(changed.to_json()) == changed
    partial = {"thresholds": law(**{"member.citizen": 1})["thresholds"]}
    assert from_json(genesis_json(constitution=partial)).constitution == \
        law(**{"member.citizen": 1})


@pytest.mark.parametrize("text", [
    genesis_json(format=None, organisations=None, constitution=None),
    genesis_json(format=None),
    genesis_json(format=1),
])
def test_a_genesis_of_format_1_is_refused_naming_format_2_and_the_command(text):
    with pytest.raises(GenesisError) as refused:
        from_json(text)
    assert "format 1" in str(refused.value) and "format 2" in str(refused.value)
    assert "stadsmunt genesis" in str(refused.value)


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
    ({"validators": tuple(GenesisValidator(f"v{i}", KEYS[i]) for i in range(3))}, "at least 4"),
    ({"validators": tuple(GenesisValidator("same", KEYS[i]) for i in range(4))}, "names repeat"),
    ({"validators": tuple(GenesisValidator(f"v{i}", KEYS[0]) for i in range(4))}, "keys repeat"),
    ({"validators": (GenesisValidator("bad name!", KEYS[0]),)}, "name"),
    ({"validators": (GenesisValidator("v", b"short"),)}, "32-byte key"),
    ({"admins": ()}, "at least one admin"),
    ({"admins": (KEYS[0], KEYS[0])}, "admin keys repeat"),
    ({"rules_version": 0}, "rules version"),
    ({"rules_version": 2}, "rules version"),      # valid-looking, but no build runs it
    ({"checkpoint_interval": 0}, "checkpoint interval"),
    ({"policies": DEFAULT_POLICIES[::-1]}, "year order"),
    ({"policies": DEFAULT_POLICIES[:1] * 2}, "year order"),
    ({"policies": (dict(DEFAULT_POLICIES[0], monthly_cap=999_999),)}, "monthly cap above"),
    ({"policies": (dict(DEFAULT_POLICIES[0], programme_yearly_cap=999_999),)},
     "programme cap above"),
    ({"policies": (dict(DEFAULT_POLICIES[0], yearly_cap=-1),)}, "yearly_cap"),
    ({"policies": (dict(DEFAULT_POLICIES[0], year=1999),)}, "year must be"),
    ({"policies": (dict(DEFAULT_POLICIES[0], bonus=1),)}, "a policy has"),
    ({"organisations": ()}, "at least one organisation"),
    ({"validators": tuple(GenesisValidator(f"v{i}", KEYS[i], "nobody") for i in range(4))},
     "organisation 'nobody' is not in organisations"),
    ({"validators": tuple(GenesisValidator(f"w{i}", KEYS[i]) for i in range(4))},
     "organisation 'w0' is not in organisations"),
    ({"organisations": tuple(Organisation(f"v{i}", (STEWARDS[0],)) for i in range(4))},
     "steward key appears twice"),
    ({"organisations": tuple(Organisation(f"v{i}", (STEWARDS[i],) * 2) for i in range(4))},
     "steward key appears twice"),
    ({"organisations": tuple(Organisation(f"v{i}", (STEWARDS[i],)) for i in range(4)),
      "admins": (STEWARDS[3],)}, "both an admin and a steward"),
    ({"organisations": (Organisation("v0", ()),) + tuple(
        Organisation(f"v{i}", (STEWARDS[i],)) for i in range(1, 4))}, "at least one steward"),
    ({"organisations": tuple(Organisation("v0", (STEWARDS[i],)) for i in range(4))},
     "organisation ids repeat"),
    ({"organisations": tuple(Organisation(f"v{i}", (STEWARDS[i],)) for i in range(3)) + (
        Organisation("bad id!", (STEWARDS[3],)),)}, "id must be"),
    ({"constitution": law(**{"constitution.set": 5})}, "constitution.set must be 1 to 4"),
    ({"constitution": law(**{"policy.set": 5})}, "policy.set must be 0 to 4"),
    ({"constitution": law(**{"member.privileged": 0})}, "member.privileged must be 1 to 4"),
    ({"constitution": law(**{"member.recover": 0})}, "member.recover must be 1 to 4"),
    ({"constitution": law(**{"member.citizen": -1})}, "member.citizen must be 0 to 4"),
    ({"constitution": law(**{"policy.set": True})}, "policy.set must be"),
    ({"constitution": law(**{"bonus.class": 1})}, "exactly the classes"),
    ({"constitution": dict(law(), recovery_delay_ms=30 * 86_400_000 + 1)},
     "recovery_delay_ms"),
    ({"constitution": dict(law(), organisations=["v0", "v1", "v3", "v2"])},
     "organisations must be genesis's"),
])
def test_a_genesis_that_breaks_a_rule_is_refused_naming_the_field(change, message):
    with pytest.raises(GenesisError, match=message):
        make(**change)


ORGS = '"organisations": [{"id": "v", "stewards": ["%s"]}]' % ("11" * 32)
VALIDATOR = '{"name": "v", "key": "%s", "organisation": "v"}' % ("22" * 32)


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ("[]", "JSON object"),
    ('{"format": 2, "chain": "x"}', "needs chain"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n"}, "validators": [], '
     '"admins": [], %s}' % ORGS, "coin must be"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [{"name": "v", "key": "zz", "organisation": "v"}], "admins": [], %s}'
     % ORGS, "64 hex"),
    ('{"format": 2, "chain": "x", "extra": 1}', "unknown genesis fields"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [{"name": "v", "key": "%s"}], "admins": [], %s}' % ("22" * 32, ORGS),
     "organisation"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [%s], "admins": ["%s"], "organisations": [{"id": "v"}]}'
     % (VALIDATOR, "33" * 32), "stewards"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [%s], "admins": ["%s"], %s, "constitution": {"recovery_delay_ms": 0}}'
     % (VALIDATOR, "33" * 32, ORGS), "constitution must be"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [%s], "admins": ["%s"], %s, "constitution": {"thresholds": {}}}'
     % (VALIDATOR, "33" * 32, ORGS), "exactly the classes"),
    ('{"format": 2, "chain": "x", "city": "c", "coin": {"name": "n", "symbol": "s"}, '
     '"validators": [%s], "admins": ["%s"]}' % (VALIDATOR, "33" * 32), "needs chain"),
    ('{"format": 3, "chain": "x"}', "format 3"),
])
def test_a_bad_genesis_file_is_refused_with_a_clear_error(text, message):
    with pytest.raises(GenesisError, match=message):
        from_json(text)


def test_validator_addresses_are_not_part_of_genesis():
    names = {f.name for f in dataclasses.fields(Genesis)} | {f.name for f in
                                                            dataclasses.fields(GenesisValidator)}
    assert not names & {"address", "host", "port", "peer", "gateway"}


@given(st.integers(1, 100_000))
def test_the_switch_margin_covers_the_window_and_ends_on_a_checkpoint(interval):
    """docs/chaincode.md, "Rules versions": M is the watermark window, max(4K, 64),
    rounded up to a multiple of K, so c + M is a checkpoint for every checkpoint c."""
    genesis = make(checkpoint_interval=interval)
    window, margin = genesis.window(), genesis.switch_margin()
    assert window == max(4 * interval, 64)
    assert margin % interval == 0 and window <= margin < window + interval
