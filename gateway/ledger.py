"""Thin reads over the store that it does not offer itself (yet): a paged scan of the
chaincode's state that starts after a key. Like every store read, it opens and closes its
read transaction inside the call, so no reader outlives it or spans an `await`."""
from __future__ import annotations

MAX_SCAN = 10_000       # entries one call may read, whatever the caller asks


def scan_after(store, prefix: bytes, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
    """Up to `limit` (key, value) pairs under `prefix`, in key order, strictly after the
    key `after` (from the start of the prefix when None)."""
    limit = max(0, min(limit, MAX_SCAN))
    out: list[tuple[bytes, bytes]] = []
    with store.env.begin(db=store.db["state"]) as txn:
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


def head_time_ms(store) -> int:
    """The block time of the head; 0 before the first block."""
    height, _ = store.head()
    if not height:
        return 0
    return store.block(height).time_ms
