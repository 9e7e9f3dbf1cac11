"""The LMDB store of one validator: one environment, named sub-databases.

| db          | key                                  | value                                |
|-------------|--------------------------------------|--------------------------------------|
| meta        | b"genesis", b"head", b"acc", b"pos", | genesis bytes; u64 height + hash;    |
|             | b"time", b"format"                   | 512-byte state accumulator; u64 last |
|             |                                      | event position; u64 block time; u16  |
|             |                                      | format of this layout (FORMAT)       |
| blocks      | u64 height                           | BlockRecord                          |
| checkpoints | u64 height                           | [block hash, certificate]            |
| results     | u64 height + u32 index               | the chaincode's compact form of the  |
|             |                                      | encoded result: raw tx id + result   |
|             |                                      | without its tx_id (`compact_result`)  |
| log         | u64 position (from 1)                | u64 height + u32 index + u16 number: |
|             |                                      | the event is in that result          |
| txids       | 32-byte tx id                        | u64 height + u32 index               |
| accounts    | 32-byte key (sorted duplicates)      | u64 position: the account's events   |
| areas       | area + 0x00 + task id                | empty: tasks by area                 |
| payouts     | status byte (0 pending, 1 paid) + id | u64 position of its coin.redeemed    |
| state       | the chaincode's keys                 | the chaincode's values               |
| consensus   | the consensus core's keys            | its values (consensus.api.Storage)   |

Integers in keys are big-endian so that LMDB's byte order is numeric order. Each fact is
stored once: an event lives in its transaction's result (the bytes the results root is
over), and the log and the indexes point at it. Tables whose keys only grow (blocks,
results, log) are written with LMDB's append flag, which fills pages instead of splitting
them in half; the account index keeps each account's positions as fixed-size sorted
duplicates under one key. Together these keep the disk near 700 bytes per spend
(docs/performance.md). Every read
opens and closes its own read transaction inside one call: a reader held open pins old
pages and makes the file grow. Writes of a block happen in ONE write transaction
(`BlockWriter`), so a crash leaves the block with its state, or neither.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import lmdb

from chaincode import events as chain_events, queries
from chaincode.results import compact_result, compact_tx_id, expand_result
from protocol import codec
from node.block import BlockRecord

MAP_SIZE = 64 << 30          # address space, not disk: far above any expected data
MAX_READERS = 512            # gateway handlers and streams read concurrently
MAX_DBS = 16
ACC_BYTES = 512
MAX_LIST = 1000              # the contract's largest page
MAX_SCAN = 10_000            # state entries one scan_after may read, whatever is asked
FORMAT = 2                   # of the table layout above; a store of another is refused

_U64 = struct.Struct(">Q")
_U64U32 = struct.Struct(">QI")
_WHERE_EVENT = struct.Struct(">QIH")      # log value: height, index, event number
_U16 = struct.Struct(">H")
# a kept checkpoint: (block hash, certificate, hash of the newest validator set scheduled)
Checkpoint = tuple[bytes, tuple[tuple[int, bytes], ...], bytes]


def decode_checkpoint(raw: bytes) -> Checkpoint:
    block_hash, certificate, set_hash = codec.unpack(raw, 1 << 20)
    return block_hash, tuple((i, s) for i, s in certificate), set_hash


DB_NAMES = ("meta", "blocks", "checkpoints", "results", "log", "txids", "accounts",
            "areas", "payouts", "state", "consensus")
PENDING, PAID = b"\x00", b"\x01"


class StoreError(Exception):
    pass


# The store keeps a result in the chaincode's compact form (chaincode/results.py): the tx
# id as its 32 raw bytes in front instead of its last entry, 41 bytes less per result.


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    position: int
    height: int
    index: int
    tx_id: str
    event: dict


class TxnState:
    """StateReader over one transaction (the executor's write transaction)."""

    def __init__(self, txn, db):
        self._txn = txn
        self._db = db

    def get(self, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._db)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return scan_prefix(self._txn, self._db, prefix)


def scan_prefix(txn, db, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of `db` whose key starts with `prefix`, in key order, read in
    the LMDB transaction `txn`."""
    cursor = txn.cursor(db)
    if not cursor.set_range(prefix):
        return
    for key, value in cursor:
        if not key.startswith(prefix):
            return
        yield key, value


class Store:
    def __init__(self, path: str | Path, map_size: int = MAP_SIZE):
        path = Path(path)
        # it holds personal data: the folder 0700, the LMDB files 0600 (owner only; `node
        # run` tightens a folder made before, ops/node_cmd.py)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        # metasync off: a commit flushes its data pages but not the meta page, which costs
        # 2.5 ms against 0.4 ms here. LMDB keeps the file consistent either way; a system
        # crash may only undo the last commit, and for a block that is harmless (the
        # replica executes or fetches it again). Consensus votes must survive any crash,
        # so ConsensusStorage.write flushes everything before a vote is sent.
        self.env = lmdb.open(str(path), map_size=map_size, max_dbs=MAX_DBS,
                             max_readers=MAX_READERS, sync=True, metasync=False,
                             readahead=False, subdir=True, lock=True, mode=0o600)
        self.db = {name: self.env.open_db(name.encode(), create=True,
                                          dupsort=name == "accounts",
                                          dupfixed=name == "accounts")
                   for name in DB_NAMES}
        stored_format = self._meta(b"format")
        if self._meta(b"genesis") is not None and stored_format != _U16.pack(FORMAT):
            self.env.close()
            found = _U16.unpack(stored_format)[0] if stored_format else 1
            raise StoreError(f"{path} holds store format {found}, this Stadsmunt reads "
                             f"format {FORMAT}: restore it from a backup or re-sync it")

    def close(self) -> None:
        self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- meta ----

    def _meta(self, key: bytes) -> bytes | None:
        with self.env.begin(db=self.db["meta"]) as txn:
            return txn.get(key)

    def genesis_bytes(self) -> bytes | None:
        return self._meta(b"genesis")

    def head(self) -> tuple[int, bytes]:
        """(height, hash) of the last block; (0, genesis hash) before block 1."""
        raw = self._meta(b"head")
        if raw is None:
            raise StoreError("store has no genesis")
        return _U64.unpack_from(raw)[0], raw[8:]

    def state_acc(self) -> int:
        return int.from_bytes(self._meta(b"acc"), "big")

    def block_time(self) -> int:
        """The time the chaincode ran the last block at: the latest block time so far. An
        empty batch that fills a gap after a view change carries time 0, and must not
        take the chain's clock back."""
        raw = self._meta(b"time")
        return _U64.unpack(raw)[0] if raw else 0

    def recent_tx_ids(self, limit: int) -> list[bytes]:
        """The raw ids of the last `limit` executed transactions, oldest first: a
        restarted replica must not take them back into its pool."""
        out = []
        with self.env.begin(db=self.db["results"]) as txn:
            cursor = txn.cursor()
            if cursor.last():
                for _, value in cursor.iterprev():
                    out.append(compact_tx_id(value))
                    if len(out) >= limit:
                        break
        out.reverse()
        return out

    def last_position(self) -> int:
        raw = self._meta(b"pos")
        return _U64.unpack(raw)[0] if raw else 0

    def init_genesis(self, genesis_bytes: bytes, genesis_hash: bytes,
                     writes: dict[bytes, bytes | None], acc: int) -> None:
        with self.env.begin(write=True) as txn:
            if txn.get(b"genesis", db=self.db["meta"]) is not None:
                raise StoreError("store already has a genesis")
            for key, value in writes.items():
                if value is not None:
                    txn.put(key, value, db=self.db["state"])
            meta = self.db["meta"]
            txn.put(b"genesis", genesis_bytes, db=meta)
            txn.put(b"head", _U64.pack(0) + genesis_hash, db=meta)
            txn.put(b"acc", acc.to_bytes(ACC_BYTES, "big"), db=meta)
            txn.put(b"pos", _U64.pack(0), db=meta)
            txn.put(b"format", _U16.pack(FORMAT), db=meta)

    # ---- blocks ----

    def block(self, height: int) -> BlockRecord | None:
        with self.env.begin(db=self.db["blocks"]) as txn:
            raw = txn.get(_U64.pack(height))
        return None if raw is None else BlockRecord.decode(raw)

    def blocks(self, from_height: int, limit: int) -> list[BlockRecord]:
        """Up to `limit` blocks from `from_height` on, in order, without a gap: they end
        before history a state sync has not fetched yet (node/history.py)."""
        limit = max(0, min(limit, MAX_LIST))
        start = max(from_height, 1)
        out = []
        with self.env.begin(db=self.db["blocks"]) as txn:
            cursor = txn.cursor()
            if cursor.set_range(_U64.pack(start)):
                for key, raw in cursor:
                    if len(out) >= limit or key != _U64.pack(start + len(out)):
                        break
                    out.append(BlockRecord.decode(raw))
        return out

    def raw_blocks(self, from_height: int, limit: int, max_bytes: int) -> list[bytes]:
        """The stored bytes (BlockRecord.encode) of up to `limit` blocks from
        `from_height`, in order, together at most `max_bytes` (but at least the first):
        what a catch-up answer sends, neither decoded nor encoded again."""
        limit = max(0, min(limit, MAX_LIST))
        out, size = [], 0
        with self.env.begin(db=self.db["blocks"]) as txn:
            cursor = txn.cursor()
            start = max(from_height, 1)
            if cursor.set_range(_U64.pack(start)):
                for key, raw in cursor:
                    if len(out) >= limit or (out and size + len(raw) > max_bytes):
                        break
                    if key != _U64.pack(start + len(out)):
                        break       # a gap: history a state sync has not fetched yet
                    out.append(bytes(raw))
                    size += len(raw)
        return out

    def checkpoint(self, height: int) -> Checkpoint | None:
        """(block hash, certificate, set hash) of the stable checkpoint kept at `height`."""
        with self.env.begin(db=self.db["checkpoints"]) as txn:
            raw = txn.get(_U64.pack(height))
        return None if raw is None else decode_checkpoint(raw)

    def put_checkpoint(self, height: int, block_hash: bytes,
                       certificate: tuple[tuple[int, bytes], ...], set_hash: bytes) -> None:
        value = codec.pack([block_hash, [list(s) for s in certificate], set_hash])
        with self.env.begin(write=True, db=self.db["checkpoints"]) as txn:
            txn.put(_U64.pack(height), value)

    def results(self, height: int) -> list[bytes]:
        prefix = _U64.pack(height)
        with self.env.begin(db=self.db["results"]) as txn:
            cursor = txn.cursor()
            out = []
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    out.append(expand_result(value))
        return out

    def tx_result(self, tx_id: str) -> tuple[int, int, bytes] | None:
        """(height, index in block, encoded result) of an executed transaction."""
        try:
            raw_id = bytes.fromhex(tx_id)
        except ValueError:
            return None
        with self.env.begin() as txn:
            where = txn.get(raw_id, db=self.db["txids"])
            if where is None:
                return None
            result = txn.get(where, db=self.db["results"])
        height, index = _U64U32.unpack(where)
        return height, index, expand_result(result)

    def executed(self, tx_ids: list[bytes]) -> list[bool]:
        """For raw 32-byte tx ids: whether each has been executed (in one read), as the
        state marks it: the chaincode marks every transaction it ran, refused ones too,
        and never unmarks one, so the mark is complete where the ids index may not be (a
        state synced from a snapshot has no ids below it until its history is indexed,
        node/history.py)."""
        with self.env.begin() as txn:
            state = TxnState(txn, self.db["state"])
            return [queries.executed(state, t.hex()) for t in tx_ids]

    # ---- the log and its indexes ----

    def events(self, after: int, limit: int) -> list[LoggedEvent]:
        limit = max(0, min(limit, MAX_LIST))
        out = []
        with self.env.begin() as txn:
            cursor = txn.cursor(self.db["log"])
            results = _Results(txn, self.db["results"])
            if cursor.set_range(_U64.pack(max(after, 0) + 1)):
                for key, raw in cursor:
                    if len(out) >= limit:
                        break
                    out.append(results.logged(key, raw))
        return out

    def account_events(self, key: bytes, after: int, limit: int) -> list[LoggedEvent]:
        if len(key) != 32:      # a shorter key would be a prefix of others' index keys
            return []
        limit = max(0, min(limit, MAX_LIST))
        out = []
        with self.env.begin() as txn:
            cursor = txn.cursor(self.db["accounts"])
            log = self.db["log"]
            results = _Results(txn, self.db["results"])
            if cursor.set_range_dup(key, _U64.pack(max(after, 0) + 1)):
                for position in cursor.iternext_dup():
                    if len(out) >= limit:
                        break
                    out.append(results.logged(position, txn.get(position, db=log)))
        return out

    def tasks_in_area(self, area: str, after_task: str, limit: int) -> list[str]:
        prefix = area.encode() + b"\x00"
        limit = max(0, min(limit, MAX_LIST))
        out = []
        with self.env.begin(db=self.db["areas"]) as txn:
            cursor = txn.cursor()
            start = prefix + after_task.encode() + b"\x00" if after_task else prefix
            if cursor.set_range(start):
                for key in cursor.iternext(values=False):
                    if len(out) >= limit or not key.startswith(prefix):
                        break
                    out.append(key[len(prefix):].decode())
        return out

    def payouts(self, paid: bool, after_id: bytes, limit: int) -> list[LoggedEvent]:
        """coin.redeemed events of pending (or paid) payouts, in payout id order."""
        prefix = PAID if paid else PENDING
        limit = max(0, min(limit, MAX_LIST))
        out = []
        with self.env.begin() as txn:
            cursor = txn.cursor(self.db["payouts"])
            results = _Results(txn, self.db["results"])
            start = prefix + after_id + b"\x00" if after_id else prefix
            if cursor.set_range(start):
                for key, position in cursor:
                    if len(out) >= limit or not key.startswith(prefix):
                        break
                    out.append(results.logged(position, txn.get(position, db=self.db["log"])))
        return out

    # ---- the chaincode's state, read from outside execution ----

    def get(self, key: bytes) -> bytes | None:
        with self.env.begin(db=self.db["state"]) as txn:
            return txn.get(key)

    def scan_after(self, prefix: bytes, after: bytes | None,
                   limit: int) -> list[tuple[bytes, bytes]]:
        """PagedReader.scan_after (chaincode/api.py): up to `limit` (at most MAX_SCAN)
        pairs under `prefix`, in key order, strictly after the key `after` (from the
        start of the prefix when None), read in one short read transaction."""
        limit = max(0, min(limit, MAX_SCAN))
        out: list[tuple[bytes, bytes]] = []
        with self.env.begin(db=self.db["state"]) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(after if after is not None else prefix):
                return out
            for key, value in cursor:
                if not key.startswith(prefix) or len(out) >= limit:
                    break
                if key == after:
                    continue
                out.append((key, value))
        return out

    def scan(self, prefix: bytes, limit: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """StateReader.scan. The pairs are read inside this call and handed out after the
        read transaction has closed, so no reader outlives the call."""
        with self.env.begin(db=self.db["state"]) as txn:
            pairs = list(TxnState(txn, self.db["state"]).scan(prefix) if limit is None
                         else _take(TxnState(txn, self.db["state"]).scan(prefix), limit))
        return iter(pairs)

    # ---- writing ----

    def writer(self) -> "BlockWriter":
        return BlockWriter(self)


def _take(iterator, limit):
    for i, item in enumerate(iterator):
        if i >= limit:
            return
        yield item


class _Results:
    """Resolves log entries to their events inside one read transaction; the result last
    decoded is kept, since a transaction's events sit side by side in the log."""

    def __init__(self, txn, db):
        self.txn, self.db = txn, db
        self.where, self.result = None, None

    def logged(self, position_key: bytes, raw: bytes) -> LoggedEvent:
        height, index, number = _WHERE_EVENT.unpack(raw)
        where = raw[:12]
        if where != self.where:
            value = self.txn.get(where, db=self.db)
            if value is None:
                raise StoreError(f"log entry {_U64.unpack(position_key)[0]} points at a "
                                 f"missing result")
            self.where, self.result = where, codec.unpack(expand_result(value), 1 << 20)
        return LoggedEvent(_U64.unpack(position_key)[0], height, index,
                           self.result["tx_id"], self.result["events"][number])


class BlockWriter:
    """One write transaction for one block: read state, then `append` everything.
    Commits on a clean exit from the `with`, aborts on an exception."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db
        self.txn = store.env.begin(write=True)
        self.state = TxnState(self.txn, self.db["state"])

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.txn.commit()
        else:
            self.txn.abort()

    def head(self) -> tuple[int, bytes, int]:
        """(height, hash, accumulator) as this transaction sees them."""
        meta = self.db["meta"]
        raw = self.txn.get(b"head", db=meta)
        if raw is None:
            raise StoreError("store has no genesis")
        acc = int.from_bytes(self.txn.get(b"acc", db=meta), "big")
        return _U64.unpack_from(raw)[0], raw[8:], acc

    def last_position(self) -> int:
        return _U64.unpack(self.txn.get(b"pos", db=self.db["meta"]))[0]

    def block_time(self) -> int:
        """The time the chaincode ran the last block at (see Store.block_time)."""
        raw = self.txn.get(b"time", db=self.db["meta"])
        return _U64.unpack(raw)[0] if raw else 0

    def append(self, record: BlockRecord, tx_ids: list[str], results: list[bytes],
               events: list[list[dict]], writes: dict[bytes, bytes | None], acc: int,
               block_time_ms: int | None = None) -> None:
        """Write block `record`, its results and their events, the state writes and the
        accumulator. `events[i]` are the events of result i (empty unless it is ok).
        `block_time_ms` is the time the chaincode ran it at (default: the record's)."""
        txn, db = self.txn, self.db
        height = record.height
        assert len(tx_ids) == len(results) == len(events) == len(record.envelopes)
        position = _U64.unpack(txn.get(b"pos", db=db["meta"]))[0]
        assert record.first_position == position + 1
        results_db, txids_db, log_db = db["results"], db["txids"], db["log"]
        for index, (tx_id, result, block_events) in enumerate(zip(tx_ids, results, events)):
            where = _U64U32.pack(height, index)
            txn.put(where, compact_result(tx_id, result), db=results_db, append=True)
            # a duplicate keeps pointing at the execution that used up the id
            txn.put(bytes.fromhex(tx_id), where, db=txids_db, overwrite=False)
            for number, event in enumerate(block_events):
                position += 1
                pos_key = _U64.pack(position)
                txn.put(pos_key, where + _U16.pack(number), db=log_db, append=True)
                self._index(event, pos_key)
        assert position - record.first_position + 1 == record.event_count
        state = db["state"]
        for key, value in writes.items():
            if value is None:
                txn.delete(key, db=state)
            else:
                txn.put(key, value, db=state)
        txn.put(_U64.pack(height), record.encode(), db=db["blocks"], append=True)
        meta = db["meta"]
        txn.put(b"head", _U64.pack(height) + record.hash, db=meta)
        txn.put(b"acc", acc.to_bytes(ACC_BYTES, "big"), db=meta)
        txn.put(b"pos", _U64.pack(position), db=meta)
        txn.put(b"time", _U64.pack(record.time_ms if block_time_ms is None else block_time_ms),
                db=meta)

    def _index(self, event: dict, pos_key: bytes) -> None:
        index_event(self.txn, self.db, event, pos_key)


def index_event(txn, db, event: dict, pos_key: bytes, paid: bool = False) -> None:
    """Adds an event at log position `pos_key` to the indexes (accounts, areas, payouts).
    `paid`: a coin.redeemed whose payout the state says is paid already (an event of
    history fetched after a state sync, node/history.py, indexed after later blocks)."""
    # what an event names and carries is the chaincode's table (chaincode/events.py)
    kind = event.get("kind")
    for key in chain_events.accounts(event):
        txn.put(key, pos_key, db=db["accounts"])
    if kind == "task.posted" and type(event.get("area")) is str:
        txn.put(event["area"].encode() + b"\x00" + str(event.get("task")).encode(), b"",
                db=db["areas"])
    elif kind == "coin.redeemed" and chain_events.payout_id(event) is not None:
        txn.put((PAID if paid else PENDING) + chain_events.payout_id(event), pos_key,
                db=db["payouts"])
    elif kind == "payout.confirmed" and chain_events.payout_id(event) is not None:
        payout = chain_events.payout_id(event)
        redeemed = txn.pop(PENDING + payout, db=db["payouts"])
        if redeemed is not None:
            txn.put(PAID + payout, redeemed, db=db["payouts"])


class ConsensusStorage:
    """consensus.api.Storage in the validator's LMDB environment, flushed to disk on every
    write, so what the replica persists is on disk before the driver sends its messages."""

    def __init__(self, store: Store):
        self.env = store.env
        self.db = store.db["consensus"]

    def write(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            for key, value in ops:
                if value is None:
                    txn.delete(key)
                else:
                    txn.put(key, value)
        self.env.sync(True)     # the meta page too: a vote is durable before it leaves

    def items(self) -> list[tuple[bytes, bytes]]:
        with self.env.begin(db=self.db) as txn:
            return list(txn.cursor().iternext())
