"""Waiting for a transaction's block: futures keyed by transaction id (hex), set by
whoever learns that the block executed (the validator itself, or a gateway process from
the validator's notice)."""
from __future__ import annotations

import asyncio


async def wait_woken(waiters: dict[str, list[asyncio.Future]], tx_id: str,
                     timeout_s: float) -> None:
    """Wait until the future this call registers under `tx_id` is set, or `timeout_s`
    passes; the future is always unregistered again."""
    future = asyncio.get_running_loop().create_future()
    waiters.setdefault(tx_id, []).append(future)
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout_s)
    except asyncio.TimeoutError:
        pass
    finally:
        futures = waiters.get(tx_id, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            waiters.pop(tx_id, None)
