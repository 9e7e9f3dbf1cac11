"""Governance from Python and from `stadsmunt gov`, against a real one-validator network
(one organisation, `municipality`, thresholds 1: its steward's proposal is enacted at
once): the client's methods, the table and --json, refusals in plain words with what to
do, and the exit codes 0 / 1 / 2, never with a traceback."""
from __future__ import annotations

import json
import os
import random

import pytest

from clientkit import in_process, run_cli
from client import DAY_MS, Client, ClientError, now_ms
from node.keys import Keypair
from ops.client_rows import ZONE_NAME
from ops.gov_cmd import action_args


def hexkey() -> str:
    return Keypair.generate().public.hex()


def far_year() -> int:
    """A year no other test sets a policy for (the current year's caps stay as they are)."""
    return random.randrange(2100, 9999)


def policy(year: int) -> dict:
    return {"year": year, "hourly_cap_21plus": 590, "hourly_cap_under21": 350,
            "monthly_cap": 23_000, "yearly_cap": 230_000}


@pytest.fixture
def gov(net, capsys):
    """`gov(*args, key=FILE)`: `stadsmunt gov --gateway URL --key FILE *args`, in
    process; the key is the steward's unless given (None: no key)."""
    def run(*args: str, key="steward"):
        key = net.steward_file if key == "steward" else key
        given = ["--key", str(key)] if key is not None else []
        return in_process(capsys, "gov", "--gateway", net.url, *given, *args)
    return run


# ---- the Python client ------------------------------------------------------------------

def test_action_args_turn_hex_into_bytes_only_where_the_schema_has_a_key():
    key = os.urandom(32)
    assert action_args("member.recover", {"old": key.hex(), "new": key}) == \
        {"old": key, "new": key}
    assert action_args("member.register", {"key": key.hex(), "role": "reviewer"}) == \
        {"key": key, "role": "reviewer"}
    assert action_args("policy.set", {"year": 2030}) == {"year": 2030}


async def test_a_stewards_proposal_is_enacted_at_once_and_reads_back(net):
    reviewer = Keypair.generate()
    async with Client(net.url, net.steward) as steward:
        result = await steward.propose("member.register",
                                       {"key": reviewer.public, "role": "reviewer"},
                                       reason="a reviewer for city hall")
        kinds = [e["kind"] for e in result["events"]]
        assert kinds == ["gov.proposed", "gov.enacted", "member.registered"]
        proposed = result["events"][0]
        assert proposed["proposal"] == result["tx_id"] and proposed["threshold"] == 1
        # seven days ahead by default
        assert abs(proposed["expires"] - (now_ms() + 7 * DAY_MS)) < 60_000
        found = await steward.proposal(result["tx_id"])
        assert found["status"] == "enacted" and found["reason"] == "a reviewer for city hall"
        assert [a["organisation"] for a in found["approved_by"]] == ["municipality"]
        enacted = await steward.proposals("enacted")
        assert result["tx_id"] in [p["id"] for p in enacted]
        assert result["tx_id"] not in [p["id"] for p in await steward.proposals("open")]
        law = await steward.constitution()
        assert [o["id"] for o in law["organisations"]] == ["municipality"]
        assert law["thresholds"]["policy.set"] == 1
    async with Client(net.url, net.admin) as admin:
        assert (await admin.account(reviewer.public))["role"] == "reviewer"


async def test_approving_or_withdrawing_a_closed_proposal_is_refused_with_its_code(net):
    async with Client(net.url, net.steward) as steward:
        proposal = (await steward.propose("policy.set", policy(far_year())))["tx_id"]
        with pytest.raises(ClientError) as again:
            await steward.approve(proposal)
        assert again.value.code == "exists"        # the organisation approved it already
        with pytest.raises(ClientError) as closed:
            await steward.withdraw(proposal)
        assert closed.value.code == "invalid_state"
        unknown = await steward.approve(os.urandom(32).hex(), check=False)
        assert unknown["code"] == "not_found"


async def test_the_admin_may_not_propose_nor_set_what_governance_decides(net):
    async with Client(net.url, net.admin) as admin:
        refused = await admin.propose("policy.set", policy(far_year()), check=False)
        assert refused["code"] == "unauthorized"
        direct = await admin.send("policy.set", policy(far_year()), check=False)
        assert direct["code"] == "unauthorized"


async def test_an_admins_recovery_freezes_the_old_key_and_a_steward_cancels_it(net):
    citizen, new = Keypair.generate(), Keypair.generate()
    async with Client(net.url, net.admin) as admin:
        await admin.send("member.register", {"key": citizen.public, "role": "citizen",
                                             "age_band": "21plus", "area": "GMS"})
        opened = await admin.recover(citizen.public.hex(), new.public)
        event = opened["events"][0]
        assert event["kind"] == "member.recovery_opened"
        assert event["effective"] > now_ms() + 71 * 3600 * 1000     # the 72-hour delay
        account = await admin.account(citizen.public)
        assert account["frozen"] is True
        assert account["recovery"] == {"new": new.public.hex(),
                                       "effective": event["effective"]}
        frozen = await admin.send("task.claim", {"task": "any"}, citizen, check=False)
        assert frozen["code"] == "frozen"
        early = await admin.complete_recovery(citizen.public, check=False)
        assert early["code"] == "invalid_state"
        async with Client(net.url, net.steward) as steward:
            cancelled = await steward.cancel_recovery(citizen.public)
        assert cancelled["events"][0]["kind"] == "member.recovery_cancelled"
        assert (await admin.account(citizen.public))["frozen"] is False
        again = await admin.recover(citizen.public, new.public, check=False)
        assert again["code"] == "invalid_state"    # only governance, after a steward's cancel


# ---- stadsmunt gov ----------------------------------------------------------------------

def test_propose_with_args_then_list_and_show_as_tables_and_json(gov):
    year = far_year()
    done = gov("propose", "policy.set", "--arg", f"year={year}",
               "--arg", "hourly_cap_21plus=590", "--arg", "hourly_cap_under21=350",
               "--arg", "monthly_cap=23000", "--arg", "yearly_cap=230000",
               "--reason", "indexed", "--expires-days", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("committed at height ")
    proposal = lines[0].split()[-1]
    assert lines[1].startswith(f"proposal {proposal}: policy.set by municipality, "
                               f"threshold 1")
    assert f"({ZONE_NAME})" in lines[1]
    assert "ENACTED: policy.set took effect" in done.stdout

    table = gov("list", "--status", "enacted", key=None)
    assert table.returncode == 0
    header, _rule, *rows = table.stdout.splitlines()
    assert header.split() == ["proposal", "action", "status", "organisation", "approvals",
                              "expires", f"({ZONE_NAME})"]
    mine = [r for r in rows if r.startswith(proposal[:16] + " ")]
    assert len(mine) == 1 and mine[0].split()[1:5] == ["policy.set", "enacted",
                                                       "municipality", "1/1"]
    listed = json.loads(gov("list", "--json", key=None).stdout)
    assert proposal in [p["id"] for p in listed]

    shown = gov("show", proposal[:12])                  # the start of the id will do
    assert shown.returncode == 0, shown.stderr
    assert f"proposal  {proposal}" in shown.stdout
    assert f'"year": {year}' in shown.stdout and "reason    indexed" in shown.stdout
    assert "status    enacted (1 of the 1 organisations needed approve)" in shown.stdout
    assert "municipality" in shown.stdout.splitlines()[-1]
    as_json = json.loads(gov("show", proposal, "--json").stdout)
    assert as_json["args"]["monthly_cap"] == 23_000 and as_json["status"] == "enacted"
    assert as_json["approved_by"][0]["counts"] is True


def test_propose_takes_args_as_json_with_keys_in_hex(gov, net, capsys):
    key = hexkey()
    done = gov("propose", "member.register", "--args-json",
               json.dumps({"key": key, "role": "auditor"}), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [e["kind"] for e in result["events"]] == ["gov.proposed", "gov.enacted",
                                                      "member.registered"]
    account = in_process(capsys, "client", "--gateway", net.url, "--key",
                         str(net.admin_file), "account", key, "--json")
    assert json.loads(account.stdout)["role"] == "auditor"


def test_an_action_that_fails_its_own_checks_says_so_and_exits_1(gov):
    key = hexkey()
    assert gov("propose", "member.register", "--arg", f"key={key}",
               "--arg", "role=reviewer").returncode == 0
    again = gov("propose", "member.register", "--arg", f"key={key}", "--arg", "role=reviewer")
    assert again.returncode == 1
    assert "FAILED: its threshold was met, but the action was refused: exists" in again.stderr
    assert "Nothing of it took effect." in again.stderr
    failed = json.loads(gov("list", "--status", "failed", "--json").stdout)
    assert any(p["args"]["key"] == key for p in failed)


def test_refusals_are_plain_words_with_what_to_do_and_exit_1(gov, net):
    year = far_year()
    by_admin = gov("propose", "policy.set", "--args-json", json.dumps(policy(year)),
                   key=net.admin_file)
    assert by_admin.returncode == 1
    assert "rejected: unauthorized: " in by_admin.stderr
    assert ("only stewards may propose; give --key with a steward key "
            "(DIR/keys/steward-NAME.key)") in by_admin.stderr
    enacted = gov("propose", "policy.set", "--args-json", json.dumps(policy(year)))
    proposal = enacted.stdout.splitlines()[0].split()[-1]
    approve = gov("approve", proposal)
    assert approve.returncode == 1 and "rejected: exists" in approve.stderr
    assert "an organisation counts once" in approve.stderr
    withdraw = gov("withdraw", proposal)
    assert withdraw.returncode == 1 and "rejected: invalid_state" in withdraw.stderr
    assert "the proposal is no longer open" in withdraw.stderr
    unknown = gov("approve", os.urandom(32).hex())
    assert unknown.returncode == 1 and "no proposal has this id" in unknown.stderr
    missing = gov("show", "abcdef0123", key=None)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    as_json = gov("approve", proposal, "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["code"] == "exists"


@pytest.mark.parametrize("args, words", [
    (("propose", "task.post", "--args-json", "{}"), "cannot be proposed"),
    (("propose", "validators.set", "--args-json", "{}"), "validators.set needs validators"),
    (("propose", "policy.set", "--arg", "year=2030"), "policy.set needs"),
    (("propose", "policy.set", "--arg", "colour=blue"), "not colour"),
    (("propose", "policy.set", "--arg", "year"), "--arg is NAME=VALUE"),
    (("propose", "policy.set", "--arg", "year=soon"), "whole number"),
    (("propose", "member.revoke", "--arg", "key=zz"), "64 hex characters"),
    (("propose", "member.register", "--arg", f"key={'ab' * 32}", "--arg", "role=citizen"),
     "a citizen needs"),
    (("propose", "policy.set", "--args-json", "[1]"), "JSON object"),
    (("propose", "policy.set", "--args-json", "{"), "not JSON"),
    (("propose", "policy.set", "--args-json", json.dumps(dict(policy(2030),
                                                              monthly_cap=300_000))),
     "do not fit policy.set"),
    (("propose", "policy.set", "--args-json", json.dumps(policy(2030)), "--expires-days",
      "31"), "--expires-days"),
    (("approve", "not-an-id"), "a proposal id is hex"),
    (("list", "--status", "sleeping"), ""),
])
def test_bad_usage_exits_2_with_the_reason(gov, args, words):
    done = gov(*args)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_a_write_without_a_key_and_an_unreachable_gateway_exit_2(net):
    no_key = run_cli("gov", "--gateway", net.url, "approve", "ab" * 32)
    assert no_key.returncode == 2 and "--key" in no_key.stderr
    closed = run_cli("gov", "--gateway", "http://127.0.0.1:9", "list")
    assert closed.returncode == 2 and "unreachable" in closed.stderr
    refused = run_cli("gov", "--gateway", net.url, "--key", str(net.admin_file),
                      "propose", "policy.set", "--args-json", json.dumps(policy(2030)))
    assert refused.returncode == 1 and "only stewards may propose" in refused.stderr
    for done in (no_key, closed, refused):
        assert "Traceback" not in done.stderr
