"""A validator's store opened read-only, for its gateway processes (gateway/serve.py).

LMDB lets any number of processes read while one writes: a reader sees the last committed
transaction when its read transaction begins. The gateway reads through the same methods
as the validator (node/store.py), each of which opens and closes its read transaction
inside the call, so no reader is held across an `await` and none pins old pages. Only the
validator writes; this environment cannot.
"""
from __future__ import annotations

from pathlib import Path

import lmdb

from protocol import codec
from node.store import (DB_NAMES, FORMAT, MAP_SIZE, MAX_DBS, MAX_READERS, Store,
                        StoreError, _U16)


class ReadOnlyStore(Store):
    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        try:
            # lock=True: readers register in the lock file, so the writer never reuses a
            # page a gateway is reading. The map as large as the writer's: a smaller one
            # would fail (MDB_MAP_RESIZED) once the file outgrows it
            self.env = lmdb.open(str(path), readonly=True, map_size=MAP_SIZE, max_dbs=MAX_DBS,
                                 max_readers=MAX_READERS, subdir=True, lock=True,
                                 readahead=False, create=False)
        except lmdb.Error as error:
            raise StoreError(f"{path}: cannot open the store read-only ({error})") from None
        try:
            self.db = {name: self.env.open_db(name.encode(), create=False,
                                              dupsort=name == "accounts",
                                              dupfixed=name == "accounts")
                       for name in DB_NAMES}
        except lmdb.Error as error:
            self.env.close()
            raise StoreError(f"{path}: not a Stadsmunt store ({error})") from None
        if self._meta(b"format") != _U16.pack(FORMAT):
            self.env.close()
            raise StoreError(f"{path}: not a store of format {FORMAT}")

    def writer(self):
        raise StoreError("this store is open read-only")


def decided(store: Store, tx_id: str) -> dict | None:
    """The decided result of a transaction with its height (as Validator.result), or None
    while it is not executed."""
    found = store.tx_result(tx_id)
    if found is None:
        return None
    height, _, encoded = found
    result = codec.unpack(encoded)
    result["height"] = height
    return result
