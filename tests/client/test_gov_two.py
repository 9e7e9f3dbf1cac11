"""Governance with two organisations on this module's own one-validator network: the
municipality's steward adds the organisation `cbs` and its steward through governance
(thresholds 1 at first), after which a cap policy needs both; so proposals stay open,
are approved by the other organisation, and are withdrawn by their own. The recovery
delay is set to 0 on the way, so an admin's recovery can be completed here."""
from __future__ import annotations

import asyncio
import json

import pytest

from clientkit import in_process
from client import Client
from node.keys import Keypair, write_key_file
from ops.cli import main

THRESHOLDS = ("policy.set=2,member.citizen=0,member.merchant=0,member.privileged=1,"
              "member.recover=1,validators.set=1,rules.activate=1,constitution.set=1")


def policy_args(year: int) -> list[str]:
    return ["--arg", f"year={year}", "--arg", "hourly_cap_21plus=590",
            "--arg", "hourly_cap_under21=350", "--arg", "monthly_cap=23000",
            "--arg", "yearly_cap=230000"]


@pytest.fixture(scope="module")
def cbs(net, tmp_path_factory):
    """The key file and key of CBS's steward, once the municipality's steward has made
    `cbs` an organisation (policy.set threshold 2, recovery delay 0) and registered that
    steward, through `stadsmunt gov propose` (printed output is captured by pytest)."""
    steward = Keypair.generate()
    path = tmp_path_factory.mktemp("cbs") / "steward-cbs.key"
    write_key_file(path, steward)
    gov = ["gov", "--gateway", net.url, "--key", str(net.steward_file), "propose"]
    assert main(gov + ["constitution.set", "--arg", "organisations=municipality,cbs",
                       "--arg", f"thresholds={THRESHOLDS}",
                       "--arg", "recovery_delay_ms=0"]) == 0
    assert main(gov + ["member.register", "--arg", f"key={steward.public.hex()}",
                       "--arg", "role=steward", "--arg", "organisation=cbs"]) == 0
    return path, steward


def test_two_organisations_propose_approve_and_withdraw(net, cbs, capsys):
    path, steward = cbs

    def gov(*args, key=net.steward_file):
        return in_process(capsys, "gov", "--gateway", net.url, "--key", str(key), *args)

    async def law():
        async with Client(net.url) as reader:
            return await reader.constitution()
    found = asyncio.run(law())
    assert {o["id"]: o["stewards"] for o in found["organisations"]}["cbs"] == \
        [steward.public.hex()]
    assert found["thresholds"]["policy.set"] == 2 and found["recovery_delay_ms"] == 0

    opened = gov("propose", *policy_args(2097), "policy.set")
    assert opened.returncode == 0, opened.stderr
    assert "threshold 2" in opened.stdout and "ENACTED" not in opened.stdout
    proposal = opened.stdout.splitlines()[0].split()[-1]
    table = gov("list", "--status", "open").stdout
    row = [line for line in table.splitlines() if line.startswith(proposal[:16])]
    assert row and row[0].split()[1:5] == ["policy.set", "open", "municipality", "1/2"]

    approved = gov("approve", proposal[:10], key=path)
    assert approved.returncode == 0, approved.stderr
    assert "approved for cbs: 2 organisation(s) approve it now" in approved.stdout
    assert "ENACTED: policy.set took effect" in approved.stdout
    shown = json.loads(gov("show", proposal, "--json").stdout)
    assert shown["status"] == "enacted"
    assert [a["organisation"] for a in shown["approved_by"]] == ["municipality", "cbs"]

    second = gov("propose", *policy_args(2098), "policy.set", "--json")
    other = json.loads(second.stdout)["tx_id"]
    by_cbs = gov("withdraw", other, key=path)
    assert by_cbs.returncode == 1 and "rejected: unauthorized" in by_cbs.stderr
    assert "only a steward of the organisation that proposed it" in by_cbs.stderr
    withdrawn = gov("withdraw", other)
    assert withdrawn.returncode == 0 and f"proposal {other} withdrawn" in withdrawn.stdout
    listed = json.loads(gov("list", "--status", "withdrawn", "--json").stdout)
    assert [p["id"] for p in listed] == [other]
    late = gov("approve", other, key=path)
    assert late.returncode == 1 and "no longer open" in late.stderr


def test_the_python_client_approves_and_withdraws_open_proposals(net, cbs):
    path, steward = cbs

    async def play():
        async with Client(net.url, net.steward) as municipality, \
                Client(net.url, steward) as other:
            first = await municipality.propose("policy.set", {
                "year": 2099, "hourly_cap_21plus": 590, "hourly_cap_under21": 350,
                "monthly_cap": 23_000, "yearly_cap": 230_000})
            assert [e["kind"] for e in first["events"]] == ["gov.proposed"]
            assert first["tx_id"] in [p["id"] for p in await other.proposals("open")]
            done = await other.approve(first["tx_id"])
            assert [e["kind"] for e in done["events"]] == ["gov.approved", "gov.enacted",
                                                           "policy.set"]
            second = await other.propose("policy.set", {
                "year": 2099, "hourly_cap_21plus": 1, "hourly_cap_under21": 1,
                "monthly_cap": 1, "yearly_cap": 1}, reason="a mistake")
            gone = await other.withdraw(second["tx_id"])
            assert gone["events"] == [{"kind": "gov.withdrawn",
                                       "proposal": second["tx_id"]}]
            assert (await other.proposal(second["tx_id"]))["status"] == "withdrawn"
    asyncio.run(play())


def test_with_no_delay_an_admins_recovery_completes(net, cbs, capsys):
    def client(*args):
        return in_process(capsys, "client", "--gateway", net.url, "--key",
                          str(net.admin_file), *args)
    old, new = Keypair.generate().public.hex(), Keypair.generate().public.hex()
    assert client("register", old, "--role", "citizen", "--age-band", "21plus",
                  "--area", "GMS").returncode == 0
    assert client("recover", old, new).returncode == 0
    done = client("recovery", "complete", old)
    assert done.returncode == 0, done.stderr
    assert "recovered at height " in done.stdout and f"{old} -> {new}" in done.stdout
    assert json.loads(client("account", new, "--json").stdout)["role"] == "citizen"
    assert json.loads(client("account", old, "--json").stdout)["active"] is False
