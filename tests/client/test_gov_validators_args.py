"""`stadsmunt gov propose validators.set`: the validators as NAME:KEY:ORGANISATION,... or as
JSON (keys as hex in both), turned into the args the chain checks, or refused with the
reason (exit 2) before anything is signed."""
from __future__ import annotations

import json

import pytest

from ops.errors import UsageError
from ops.gov_cmd import proposal_args

KEYS = [bytes([0x21 + i]) * 32 for i in range(4)]
ORGS = ("municipality", "cbs", "brightlands", "vng")
WANTED = {"validators": [{"name": o, "key": k, "organisation": o} for o, k in zip(ORGS, KEYS)]}


def test_the_short_form_names_each_validator_with_its_key_and_organisation():
    text = ",".join(f"{o}:{k.hex()}:{o}" for o, k in zip(ORGS, KEYS))
    assert proposal_args("validators.set", [f"validators={text}"], None) == WANTED
    spaced = " , ".join(f"{o} : {k.hex().upper()} : {o}" for o, k in zip(ORGS, KEYS))
    assert proposal_args("validators.set", [f"validators={spaced}"], None) == WANTED


def test_json_in_args_json_or_in_arg_has_its_keys_as_hex():
    as_json = {"validators": [dict(v, key=v["key"].hex()) for v in WANTED["validators"]]}
    assert proposal_args("validators.set", [], json.dumps(as_json)) == WANTED
    listed = json.dumps(as_json["validators"])
    assert proposal_args("validators.set", [f"validators={listed}"], None) == WANTED


@pytest.mark.parametrize("pairs,text,words", [
    (["validators=v1:zz:municipality"], None, "64 hex characters"),
    (["validators=v1:municipality"], None, "NAME:KEY:ORGANISATION"),
    ([f"validators=v1:{KEYS[0].hex()}:cbs,v2:{KEYS[1].hex()}:cbs"], None,
     "do not fit validators.set"),                                  # two: not 1 or 4 to 64
    (["validators=[{\"name\": \"v1\", \"key\": \"zz\", \"organisation\": \"cbs\"}]"], None,
     "64 hex characters"),
    ([], json.dumps({"validators": [{"name": "v1", "key": "zz", "organisation": "cbs"}]}),
     "64 hex characters"),
    ([], "{}", "validators.set needs validators"),
])
def test_bad_validators_are_refused_with_the_reason(pairs, text, words):
    with pytest.raises(UsageError, match=words):
        proposal_args("validators.set", pairs, text)
