"""The audit of a log with governance: it passes and its report lists the decisions (text
and JSON); an admin's direct policy.set passes while policy.set's threshold is 0; and the
governance check is independent of the chaincode: a chaincode with a planted bug writes
a log whose every byte re-executes the same, and the check still fails it."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

import chaincode.governance
from audit_kit import ADMIN, blocks_of, build_blocks, run_audit
from gov_kit import STEWARDS, Script, codes, governance_story, policy
from ledger_kit import make_genesis
from ops.cli import main


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    """(data path, genesis, expected decisions) of the governance story."""
    blocks, expected = governance_story()
    path = tmp_path_factory.mktemp("gov") / "data"
    genesis = build_blocks(path, make_genesis(ADMIN), blocks)
    return path, genesis, expected


def test_a_log_with_governance_passes_and_lists_every_decision(governed):
    path, genesis, expected = governed
    genesis_bytes, blocks = blocks_of(path)
    report = run_audit(genesis_bytes, blocks, pin=genesis.hash())
    assert report.failure is None
    got = [(d["height"], d["summary"], d["organisation"], d["approvals"],
            d["outcome"] if d["code"] is None else f"{d['outcome']} ({d['code']})")
           for d in report.decisions]
    assert got == expected
    enacted = report.decisions[0]
    assert enacted["action"] == "policy.set" and enacted["args"]["year"] == 2027
    assert enacted["proposer"] == STEWARDS["municipality"].public.hex()
    assert (enacted["proposed"], enacted["threshold"]) == (1, 3)


def test_the_cli_prints_the_decisions_after_the_summary_and_json_carries_them(governed,
                                                                               capsys):
    path, genesis, expected = governed
    assert main(["audit", str(path), "--genesis-hash", genesis.hash().hex()]) == 0
    out = capsys.readouterr().out
    section = out[out.index("Governance decisions"):]
    assert out.index("head hash") < out.index("Governance decisions")
    lines = section.splitlines()[1:]
    assert len(lines) == len(expected)
    assert lines[0] == ("  height 3: policy.set 2027; proposed by municipality, approved by "
                        "municipality, cbs, brightlands (threshold 3): enacted")
    assert "member.register steward cbs" in section and "failed (exists)" in section
    assert main(["audit", str(path), "--json", "--jobs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(d["height"], d["summary"], d["approvals"]) for d in report["governance"]] \
        == [(h, summary, approvals) for h, summary, _, approvals, _ in expected]


def test_an_empty_period_says_so(logged, capsys):
    assert main(["audit", str(logged[0])]) == 0
    out = capsys.readouterr().out
    assert "Governance decisions\n  none in this period" in out
    assert main(["audit", str(logged[0]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["governance"] == []


def _ungoverned_policy_genesis():
    genesis = make_genesis(ADMIN)
    law = dict(genesis.constitution)
    law["thresholds"] = dict(law["thresholds"], **{"policy.set": 0})
    return replace(genesis, constitution=law)


def test_an_admins_direct_policy_set_passes_while_policy_set_is_not_governed(tmp_path):
    s = Script()
    _, proposal = s.propose("municipality", "policy.set", **policy(2027))
    s.block(s.by_admin("policy.set", **policy(2027)), proposal)
    path = tmp_path / "data"
    genesis = build_blocks(path, _ungoverned_policy_genesis(), s.blocks)
    genesis_bytes, blocks = blocks_of(path)
    assert codes(blocks) == [["ok", "invalid_state"]]     # governance cannot propose it
    report = run_audit(genesis_bytes, blocks, pin=genesis.hash())
    assert report.failure is None and report.decisions == []


def _planted(monkeypatch, tmp_path, bug: str, value, blocks):
    """The audit of `blocks` written and re-executed by a chaincode with a planted bug."""
    monkeypatch.setattr(chaincode.governance, bug, value)
    path = tmp_path / "data"
    genesis = build_blocks(path, make_genesis(ADMIN), blocks)
    genesis_bytes, source_blocks = blocks_of(path)
    return run_audit(genesis_bytes, source_blocks, pin=genesis.hash()), source_blocks


def test_a_chaincode_that_counts_every_organisation_fails_the_independent_check(
        monkeypatch, tmp_path):
    s = Script()
    s.block(s.by_admin("member.register", key=b"c" * 32, role="merchant", name="Shop"))
    _, e = s.propose("cbs", "policy.set", **policy(2027))
    s.block(e)
    report, blocks = _planted(monkeypatch, tmp_path, "counting_organisations",
                              lambda view, record, law: set(law["organisations"]), s.blocks)
    assert codes(blocks) == [["ok"], ["ok"]]      # the buggy chaincode enacted it at once
    assert report.failure.height == 2
    assert report.failure.reason.endswith(
        "(policy.set 2027) takes effect with the approval of 1 organisation(s) (cbs); "
        "the constitution in force needs 3 for policy.set")


def test_a_chaincode_that_lets_an_admin_act_alone_fails_the_independent_check(
        monkeypatch, tmp_path):
    def direct(c, kind, signer, args, member, tx_key, handler):
        return handler(c, signer, args, member, tx_key)

    s = Script()
    s.block(s.by_admin("member.register", key=b"r" * 32, role="reviewer"))
    report, blocks = _planted(monkeypatch, tmp_path, "direct", direct, s.blocks)
    assert codes(blocks) == [["ok"]]
    assert report.failure.height == 1
    assert report.failure.reason == (
        f"the registration of reviewer {(b'r' * 32).hex()[:8]} took effect without "
        f"governance: member.privileged needs the approval of 3 organisation(s) under the "
        f"constitution in force, and no proposal was enacted")
