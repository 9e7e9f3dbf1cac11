"""A log that switches rules at a height, through the validators' executor and the audit
(docs/audit.md, docs/chaincode.md "Rules versions"): three organisations enact
`rules.activate` of the tests' version 2 (tests/chaincode/rules_v2.py: spends under 5
cents refused) from `due`; every block below it runs under version 1, every block from it
under version 2. Without version 2 the executor stops before `due` (RulesMissing, nothing
written) and the audit fails at `due`, naming the version; with it, both pass."""
from __future__ import annotations

import hashlib

import msgpack
import pytest

import chaincode
from tests.chaincode import rules_v2
from audit_kit import build_blocks
from ledger_kit import CHAIN, HOUR_MS, T0, earning, keypair, make_genesis, numbered
from node.audit import audit, open_source
from node.block import RulesMissing
from node.envelope import Door
from node.executor import open_ledger, replay
from node.store import Store

ADMIN = keypair("admin")
MARGIN = make_genesis(ADMIN).switch_margin()


def _tx_id(envelope: bytes) -> str:
    return hashlib.sha256(msgpack.unpackb(envelope)[0]).hexdigest()


def switching_log() -> tuple[list, int, list[str]]:
    """(blocks, due, [the 1-cent spend at due, the 5-cent one])."""
    citizen, shop = keypair("citizen"), keypair("shop")
    tx = numbered()
    blocks = earning(tx, ADMIN, citizen, shop) + [
        [tx(citizen, "coin.spend", to=shop.public, amount=1)]]
    enacting = len(blocks) + 3
    due = enacting + MARGIN
    proposal = tx(keypair("steward-municipality"), "gov.propose", action="rules.activate",
                  args={"version": 2, "height": due}, expires=T0 + 7 * 24 * HOUR_MS)
    blocks.append([proposal])
    for org in ("cbs", "brightlands"):
        blocks.append([tx(keypair("steward-" + org), "gov.approve",
                          proposal=_tx_id(proposal))])
    assert len(blocks) == enacting
    blocks += [[] for _ in range(due - 2 - enacting)]
    blocks.append([tx(citizen, "coin.spend", to=shop.public, amount=1)])   # height due - 1
    spends = [tx(citizen, "coin.spend", to=shop.public, amount=1),
              tx(citizen, "coin.spend", to=shop.public, amount=5)]
    blocks.append(spends)                                                 # height due
    return [(T0 + (i + 1) * HOUR_MS, b) for i, b in enumerate(blocks)], due, \
        [_tx_id(s) for s in spends]


@pytest.fixture
def built(tmp_path):
    """The switching log executed into a store by an executor that runs version 2."""
    blocks, due, spends = switching_log()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(chaincode._RULES, 2, rules_v2)
        genesis = build_blocks(tmp_path / "log", make_genesis(ADMIN), blocks)
    return tmp_path / "log", genesis, due, spends


def _codes(store: Store, height: int) -> list[str]:
    return [msgpack.unpackb(r)["code"] for r in store.results(height)]


def test_blocks_from_the_height_ran_under_version_2(built):
    path, _genesis, due, _spends = built
    with Store(path) as store:
        assert _codes(store, due - 1) == ["ok"]
        assert _codes(store, due) == ["invalid_args", "ok"]
        events = [e for b in range(1, due) for r in store.results(b)
                  for e in msgpack.unpackb(r)["events"] if e["kind"] == "rules.activate"]
        assert events == [{"kind": "rules.activate", "version": 2, "height": due}]


def test_without_version_2_the_executor_stops_before_the_height(built, tmp_path):
    path, genesis, due, _spends = built
    with Store(path) as source:
        fresh = open_ledger(tmp_path / "fresh", genesis, Door(CHAIN))
        with pytest.raises(RulesMissing) as missing:
            replay(source, fresh)
        assert (missing.value.version, missing.value.first, missing.value.height) == \
            (2, due, due)
        assert "install a stadsmunt that runs version 2" in str(missing.value)
        assert fresh.store.head()[0] == due - 1
        with pytest.MonkeyPatch.context() as patch:     # given the version, it goes on
            patch.setitem(chaincode._RULES, 2, rules_v2)
            assert replay(source, fresh) == source.head()[1]
        fresh.store.close()


def test_the_audit_runs_each_block_under_its_version_and_names_a_missing_one(built):
    path, _genesis, due, _spends = built
    source = open_source(str(path), None)
    try:
        report = audit([source], jobs=1)
    finally:
        source.close()
    assert report.failure is not None
    assert report.failure.height == due, report.failure
    assert (f"cannot re-execute: rules version 2 is in force from height {due}"
            in str(report.failure)), report.failure
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(chaincode._RULES, 2, rules_v2)
        source = open_source(str(path), None)
        try:
            report = audit([source], jobs=1)
        finally:
            source.close()
    assert report.failure is None, report.failure
    assert [d["action"] for d in report.decisions if d["outcome"] == "enacted"] == \
        ["rules.activate"]
