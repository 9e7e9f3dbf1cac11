"""The chain's head as the gateway's reads need it: thin reads over the store that it
does not offer itself (yet), not a ledger of their own. The chaincode's state is read
only through its read model (chaincode/queries.py), whose paged reads take the store as
their PagedReader (Store.scan_after). Like every store read, each opens and closes its
read transaction inside the call, so no reader outlives it or spans an `await`."""
from __future__ import annotations


def head_time_ms(store) -> int:
    """The block time of the head; 0 before the first block."""
    height, _ = store.head()
    if not height:
        return 0
    return store.block(height).time_ms
