"""The chain's head as the gateway's reads need it: thin reads over the store that it
does not offer itself (yet), not a ledger of their own. The chaincode's state is read
only through its read model (chaincode/queries.py), whose paged reads take the store as
their PagedReader (Store.scan_after). Like every store read, each opens and closes its
read transaction inside the call, so no reader outlives it or spans an `await`."""
from __future__ import annotations


def head_time_ms(store) -> int:
    """The chain's clock at the head: the time the chaincode ran the last block at (the
    latest block time so far, Store.block_time), never the time 0 of an empty batch that
    filled a gap after a view change; 0 before the first block."""
    return store.block_time()
