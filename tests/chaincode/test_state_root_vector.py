"""The state-root test vector of docs/chaincode.md ("State root test vector") is what the
chaincode computes, and what the document's "State root" section computes by hand.

The log is tests/chaincode/vectors/state_root_v1.json: a genesis (in the genesis.json form
of docs/protocol.md, "Genesis") and nine blocks that use every kind of rules version 1,
each transaction `ok`. Keys are Ed25519 keys from the seeds `bytes([i]) * 32`; each
transaction is a signed envelope whose body (nonce: its position in the log, from 1)
gives its id. In `args`, the text "key:NAME" stands for NAME's public key (`bin`),
"tx:LABEL" for the id of the transaction so labelled (hex `str`), "bin:HEX" for those
bytes; any other value is itself.

For every block the test checks the root that `execute_block` returns against the
table in the document, and against the root recomputed from scratch from the state's
entries with nothing but SHAKE-256 and SHA-256, as "State root" says. So neither the
document nor the code can drift.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import chaincode
from chaincode.api import BlockContext, Tx
from chaincode.v1 import KINDS
from chaincode.queries import InMemoryState
from protocol import codec
from protocol.envelope import make_body, seal, tx_id_of
from node.genesis import from_json
from node.keys import Keypair

HERE = Path(__file__).resolve().parent
VECTOR = json.loads((HERE / "vectors" / "state_root_v1.json").read_text(encoding="utf-8"))
DOC = (HERE.parents[1] / "docs" / "chaincode.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (\d+)[^|]*\|[^|]*\|([^|]*)\| `([0-9a-f]{64})` \|$")


def adhash_root(entries: dict[bytes, bytes]) -> bytes:
    """docs/chaincode.md, "State root", from the live entries alone."""
    acc = 0
    for key, value in entries.items():
        digest = hashlib.shake_256(b"stadsmunt/state/v1" + len(key).to_bytes(4, "big")
                                   + key + value).digest(512)
        acc += int.from_bytes(digest, "big")
    acc %= 1 << 4096
    return hashlib.sha256(b"stadsmunt/state-root/v1" + acc.to_bytes(512, "big")).digest()


def keypairs() -> dict[str, Keypair]:
    return {name: Keypair.from_seed(bytes([seed]) * 32)
            for name, seed in VECTOR["keys"].items()}


def resolve(value, keys: dict[str, Keypair], ids: dict[str, str]):
    if type(value) is dict:
        return {k: resolve(v, keys, ids) for k, v in value.items()}
    if type(value) is list:
        return [resolve(v, keys, ids) for v in value]
    if type(value) is str:
        head, _, rest = value.partition(":")
        if head == "key" and rest in keys:
            return keys[rest].public
        if head == "tx" and rest in ids:
            return ids[rest]
        if head == "bin":
            return bytes.fromhex(rest)
    return value


def kinds_cell(kinds: list[str]) -> str:
    """`kind` (n) for each kind, in order of first use."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"`{k}`" + (f" ({n})" if n > 1 else "") for k, n in counts.items())


def run_vector():
    """(genesis hash, [(height, time, kinds cell, state root)], final state, events)."""
    keys = keypairs()
    genesis = from_json(json.dumps(VECTOR["genesis"]))
    writes, acc = genesis.state()
    state = InMemoryState(writes)
    entries = dict(writes)                    # the independent copy of the state
    root = chaincode.state_root(acc)
    assert root == adhash_root(entries)
    rows = [(0, "-", "-", root)]
    ids: dict[str, str] = {}
    nonce, events = 0, []
    for height, block in enumerate(VECTOR["blocks"], start=1):
        txs = []
        for entry in block["txs"]:
            nonce += 1
            signer = keys[entry["signer"]]
            body = make_body(genesis.chain, entry["kind"], signer.public, nonce,
                             resolve(entry["args"], keys, ids))
            envelope = seal(signer, body)
            decoded = codec.unpack(codec.unpack(envelope)[0])
            ids[entry["label"]] = tx_id_of(body)
            txs.append(Tx(tx_id_of(body), decoded["signer"], decoded["kind"], decoded["args"]))
        outcome = chaincode.execute_block(genesis.rules_version, state,
                                          BlockContext(height, block["time_ms"],
                                                       genesis.switch_margin(),
                                                       genesis.checkpoint_interval), txs, acc)
        for tx, result in zip(txs, outcome.results):
            assert result.code == "ok", (height, tx.kind, result.code, result.info)
            events += result.events
        state.apply(outcome.writes)
        for key, value in outcome.writes.items():
            if value is None:
                del entries[key]
            else:
                entries[key] = value
        acc = outcome.state_acc
        assert outcome.state_root == adhash_root(entries), f"block {height}"
        rows.append((height, str(block["time_ms"]), kinds_cell([t.kind for t in txs]),
                     outcome.state_root))
    return genesis.hash(), rows, entries, events


def test_the_vector_uses_every_kind_and_its_keys_are_the_seeds():
    keys = keypairs()
    genesis = from_json(json.dumps(VECTOR["genesis"]))
    assert genesis.admins == (keys["admin"].public,)
    assert genesis.validators[0].key == keys["validator"].public
    assert [o.stewards for o in genesis.organisations] == [
        (keys["steward-city"].public,), (keys["steward-coop"].public,)]
    signed = {tx["kind"] for block in VECTOR["blocks"] for tx in block["txs"]}
    _, _, _, events = run_vector()
    enacted = {e["action"] for e in events if e["kind"] == "gov.enacted"}
    # constitution.set, rules.activate and validators.set are signed by governance only:
    # they run as enacted proposals
    assert signed | enacted == set(KINDS)
    assert enacted == {"constitution.set", "rules.activate", "validators.set"}


def test_the_documented_state_roots_are_the_chaincodes_and_the_adhash_of_the_doc():
    genesis_hash, rows, _, _ = run_vector()
    assert f"genesis hash `{genesis_hash.hex()}`" in DOC
    expected = [(str(h), cell.strip(), root.hex()) for h, _, cell, root in rows]
    documented = [(m.group(1), m.group(2).strip(), m.group(3))
                  for m in map(ROW.match, DOC.splitlines()) if m]
    table = "\n".join(f"| {h}{' (genesis)' if h == 0 else ''} | {t} | {cell} | `{root.hex()}` |"
                      for h, t, cell, root in rows)
    assert documented == expected, "docs/chaincode.md should say:\n" + table


def test_the_raw_values_are_as_the_layout_says():
    """x/ (but an ok spend's), i/, q/ and s/ values are zero bytes, not the msgpack empty
    bin (c4 00); a spend's x/ value is msgpack; z/ is the 32 raw bytes of a key."""
    _, _, entries, _ = run_vector()
    for prefix in (b"i/", b"q/", b"s/"):
        found = [v for k, v in entries.items() if k.startswith(prefix)]
        assert found and all(v == b"" for v in found), prefix
    executed = [v for k, v in entries.items() if k.startswith(b"x/")]
    spends = [v for v in executed if v != b""]
    assert len(spends) == 1 and codec.unpack(spends[0])[2:] == [300, 100]
    assert executed.count(b"") == len(executed) - 1
    # the state after block 6 held an open recovery: its z/ value was the raw old key
    keys = keypairs()
    assert entries[b"m/" + keys["citizen-1"].public] == codec.pack(
        {"active": False, "balance": 0, "recovered_to": keys["citizen-1-new"].public,
         "role": "citizen"})
    assert not any(k.startswith((b"y/", b"z/")) for k in entries)
