"""The chain's clock as the gateway reads it (gateway/chainhead.py): the time the last
block ran at, so that an empty batch at the head (time 0, filling a gap after a view
change) does not show tasks, proposals and /v1/stats months as of 1970."""
from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
for kit in ("node", "audit"):
    if str(TESTS / kit) not in sys.path:
        sys.path.insert(0, str(TESTS / kit))

from audit_kit import build_blocks  # noqa: E402
from gateway.chainhead import head_time_ms  # noqa: E402
from ledger_kit import HOUR_MS, T0, earning, keypair, make_genesis, numbered  # noqa: E402
from node.store import Store  # noqa: E402


def test_an_empty_batch_at_the_head_does_not_take_the_clock_back(tmp_path):
    admin = keypair("admin")
    blocks = earning(numbered(), admin, keypair("citizen"), keypair("shop"))
    timed = [(T0 + i * HOUR_MS, b) for i, b in enumerate(blocks, 1)] + [(0, [])]
    build_blocks(tmp_path / "data", make_genesis(admin), timed)
    with Store(tmp_path / "data") as store:
        height, _ = store.head()
        assert store.block(height).time_ms == 0
        assert head_time_ms(store) == T0 + len(blocks) * HOUR_MS
