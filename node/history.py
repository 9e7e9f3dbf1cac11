"""The history below a synced state, fetched in the background (docs/statesync.md).

A validator that synced its state at height c has the block record of c and nothing of
the heights below it (down to its old head + 1: all of them for a new validator). It
asks its peers for them from c down, a stretch at a time, and checks each block without
executing anything: its record must hash to the hash expected at its height (c's, from
the certified checkpoint; below, the previous hash of the block above it) and its
results to its results root. Blocks and results are written as they come; once the
lowest missing height is in, the log and the indexes of those heights are built in
ascending order, a stretch per write transaction. Until both are done the status says
`history` is incomplete, and an export or an audit read of this validator refuses the
heights it lacks.
"""
from __future__ import annotations

import struct

from chaincode import queries
from chaincode.results import compact_result, decode_result, expand_result
from consensus.digest import batch_digest, envelope_hash
from node.block import BlockRecord
from node.genesis import from_map as genesis_from_map
from node.store import TxnState, index_event
from protocol import codec

ASK_BLOCKS = 64                 # blocks asked for at once
REINDEX_BLOCKS = 256            # blocks indexed per write transaction, at most,
REINDEX_RESULTS = 10_000        # and transactions: a transaction's dirty pages stay small
HISTORY = b"history"            # meta: u64 lowest, u64 highest missing, its hash, u64 top
REINDEX = b"history/reindex"    # meta: u64 next height to index, u64 last
_U64 = struct.Struct(">Q")
_U64U32 = struct.Struct(">QI")
_U16 = struct.Struct(">H")


class HistoryRefused(ValueError):
    """A block a peer sent that is not the one expected at its height."""

    def __init__(self, height: int, reason: str):
        super().__init__(f"block {height}: {reason}")
        self.height, self.reason = height, reason


def missing(store) -> tuple[int, int, int, bytes] | None:
    """(lowest, highest, top, hash expected at highest) still to fetch, else None."""
    with store.env.begin(db=store.db["meta"]) as txn:
        raw = txn.get(HISTORY)
    if raw is None:
        return None
    low, high = struct.unpack_from(">QQ", raw)
    return low, high, _U64.unpack_from(raw, 48)[0], raw[16:48]


def history_value(low: int, high: int, expected: bytes, top: int) -> bytes:
    return struct.pack(">QQ", low, high) + expected + _U64.pack(top)


def indexing(store) -> tuple[int, int] | None:
    with store.env.begin(db=store.db["meta"]) as txn:
        raw = txn.get(REINDEX)
    return None if raw is None else struct.unpack(">QQ", raw)


def status(store) -> dict:
    """What the status says of this validator's history (docs/api.md)."""
    fetching, building = missing(store), indexing(store)
    return {"complete": fetching is None and building is None,
            "missing": None if fetching is None else [fetching[0], fetching[1]],
            "indexing": None if building is None else [building[0], building[1]]}


def ask(store) -> tuple[int, int] | None:
    """The next stretch to ask a peer for, [from, to], or None when nothing is missing."""
    found = missing(store)
    if found is None:
        return None
    low, high = found[0], found[1]
    return max(low, high - ASK_BLOCKS + 1), high


def serve(store, from_height: int, to_height: int, max_bytes: int) -> list[list]:
    """A history answer: [record, results] from `to_height` down to `from_height`, as
    many as fit `max_bytes` (at least one), ending at the first height this validator
    lacks (or lacks the results of)."""
    out, size = [], 0
    for height in range(to_height, from_height - 1, -1):
        record = store.block(height)
        if record is None:
            break
        results = store.results(height)
        if len(results) != len(record.envelopes):
            break
        raw = record.encode()
        cost = len(raw) + sum(len(r) for r in results)
        if out and size + cost > max_bytes:
            break
        out.append([raw, results])
        size += cost
    return out


def apply(store, items: list[tuple[bytes, list[bytes]]]) -> int:
    """Writes the blocks of a peer's answer that are the ones expected, from the highest
    missing height down; returns how many. HistoryRefused at the first that is not (the
    ones before it are kept)."""
    written = 0
    domain = None
    for raw, results in items:
        found = missing(store)
        if found is None:
            break
        low, high, top, expected = found
        try:
            record = BlockRecord.decode(raw)
        except Exception as error:       # a peer's bytes: any decoding error is theirs
            raise HistoryRefused(high, f"undecodable record ({error})") from None
        if not _well_formed(record):
            raise HistoryRefused(high, "a field of its record has the wrong type or size")
        if record.height > high:
            continue            # a late answer to an earlier ask: written already
        if record.height != high:
            raise HistoryRefused(high, f"the answer holds block {record.height} here")
        if record.hash != expected or not record.check_hash():
            raise HistoryRefused(high, "its hash is not the one the chain expects there")
        # the block hash covers the batch digest, not the envelopes and the time it is
        # over, nor the log positions: those are checked against the digest and the block
        # above (the top one against the record of the agreed manifest, kept by the sync)
        if domain is None:
            domain = genesis_from_map(codec.unpack(store.genesis_bytes(), 1 << 20)).domain()
        if record.height == top:
            kept = store.block(top)
            placed = kept is not None and (kept.first_position, kept.event_count) == \
                (record.first_position, record.event_count)
        else:
            above = store.block(record.height + 1)
            placed = above is not None and \
                record.first_position + record.event_count == above.first_position
        if not placed or batch_digest(domain, record.height, record.time_ms,
                                      [envelope_hash(e) for e in record.envelopes]) \
                != record.batch_digest:
            raise HistoryRefused(high, "its envelopes, time or log positions are not the "
                                 "ones its hash and the block above it fix")
        if not record.holds_results(results):
            raise HistoryRefused(high, "its results do not make its results root")
        try:
            decoded = [decode_result(r) for r in results]
            events = sum(len(d["events"]) for d in decoded)
            compact = [compact_result(d["tx_id"], r) for d, r in zip(decoded, results)]
        except Exception as error:
            raise HistoryRefused(high, f"an undecodable result ({error})") from None
        if events != record.event_count:
            raise HistoryRefused(high, "its results do not hold its count of events")
        _write(store, record, raw, compact, low, top)
        written += 1
    return written


def _well_formed(record: BlockRecord) -> bool:
    """The fields of a peer's record have the types and sizes a stored one has (the
    checks above would otherwise fail with any error, or none)."""
    return (all(type(v) is int and 0 <= v < 1 << 64 for v in (
                record.height, record.view, record.time_ms, record.first_position,
                record.event_count))
            and all(type(h) is bytes and len(h) == 32 for h in (
                record.prev_hash, record.batch_digest, record.results_root,
                record.state_root, record.hash))
            and all(type(e) is bytes for e in record.envelopes))


def _write(store, record: BlockRecord, raw: bytes, compact: list[bytes], low: int,
           top: int) -> None:
    db = store.db
    with store.env.begin(write=True) as txn:
        txn.put(_U64.pack(record.height), raw, db=db["blocks"])
        for index, value in enumerate(compact):
            txn.put(_U64U32.pack(record.height, index), value, db=db["results"])
        if record.height > low:
            txn.put(HISTORY, history_value(low, record.height - 1, record.prev_hash, top),
                    db=db["meta"])
        else:
            txn.delete(HISTORY, db=db["meta"])
            txn.put(REINDEX, struct.pack(">QQ", low, top), db=db["meta"])


def reindex_step(store) -> bool:
    """Indexes the next blocks of fetched history (REINDEX_BLOCKS, fewer when they hold
    more than REINDEX_RESULTS transactions, but always one); True while more is left. The log positions are the blocks' own (first_position), so the order of
    writing does not matter for them; a transaction id keeps pointing at its first
    execution, and a payout redeemed here but confirmed after the sync is indexed paid."""
    found = indexing(store)
    if found is None:
        return False
    start, last = found
    db = store.db
    done = 0        # results indexed in this transaction
    with store.env.begin(write=True) as txn:
        end = start - 1
        while end < last and end - start + 1 < REINDEX_BLOCKS and done < REINDEX_RESULTS:
            end = height = end + 1
            record = BlockRecord.decode(txn.get(_U64.pack(height), db=db["blocks"]))
            done += len(record.envelopes)
            position = record.first_position
            for index in range(len(record.envelopes)):
                where = _U64U32.pack(height, index)
                compact = txn.get(where, db=db["results"])
                result = decode_result(expand_result(compact))
                raw_id = compact[:32]
                pointer = txn.get(raw_id, db=db["txids"])
                if pointer is None or _U64U32.unpack(pointer)[0] > last:
                    txn.put(raw_id, where, db=db["txids"])
                for number, event in enumerate(result["events"]):
                    pos_key = _U64.pack(position)
                    txn.put(pos_key, where + _U16.pack(number), db=db["log"])
                    index_event(txn, db, event, pos_key, paid=_paid(store, txn, event))
                    position += 1
        if end < last:
            txn.put(REINDEX, struct.pack(">QQ", end + 1, last), db=db["meta"])
        else:
            txn.delete(REINDEX, db=db["meta"])
    return end < last


def _paid(store, txn, event: dict) -> bool:
    if event.get("kind") != "coin.redeemed" or type(event.get("payout")) is not str:
        return False
    state = TxnState(txn, store.db["state"])
    found = queries.payout(state, bytes.fromhex(event["payout"]))
    return found is not None and found.get("status") == "paid"
