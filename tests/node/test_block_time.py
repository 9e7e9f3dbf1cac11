"""The chain's clock never goes back: a block whose header carries an earlier time (an
empty batch after a view change carries 0) is executed at the latest block time so far,
by the executor and by the audit alike."""
from __future__ import annotations

from ledger_kit import T0, HOUR_MS, certified, keypair, make_genesis
from node.envelope import Door, sign_tx
from node.executor import open_ledger
from protocol import codec


def test_an_earlier_or_null_block_time_runs_at_the_latest_time(tmp_path):
    admin, citizen = keypair("admin"), keypair("citizen")
    genesis = make_genesis(admin)
    ledger = open_ledger(tmp_path / "store", genesis, Door(genesis.chain))
    register = sign_tx(admin, genesis.chain, "member.register",
                       dict(key=citizen.public, role="citizen", age_band="21plus", area="GMS"),
                       nonce=1)
    late = T0 + 10 * HOUR_MS
    ledger.execute(certified(ledger, 1, late, [register]))
    ledger.execute(certified(ledger, 2, 0, []))               # a null batch
    assert ledger.store.block_time() == late
    # a task whose deadline lies between the header's time and the latest time: posting
    # it must be refused as past its deadline, since the chain's clock is at `late`
    post = sign_tx(admin, genesis.chain, "task.post",
                   dict(task="t1", title="Weed the garden", area="GMS", domain="care",
                        reward=500, minutes=60, slots=1, deadline=late - HOUR_MS), nonce=2)
    ledger.execute(certified(ledger, 3, T0 + HOUR_MS, [post]))
    _, _, encoded = ledger.store.tx_result(_tx_id(post))
    assert codec.unpack(encoded)["code"] == "deadline_passed"
    assert ledger.store.block_time() == late


def _tx_id(envelope: bytes) -> str:
    import hashlib
    import msgpack
    return hashlib.sha256(msgpack.unpackb(envelope)[0]).hexdigest()


def test_the_audit_replays_a_clock_that_a_header_takes_back(tmp_path):
    from node.audit import audit, open_source
    test_an_earlier_or_null_block_time_runs_at_the_latest_time(tmp_path)
    report = audit([open_source(str(tmp_path / "store"), None)], jobs=1)
    assert report.failure is None, report.failure
    assert report.summary["blocks"] == 3
