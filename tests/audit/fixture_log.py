"""The committed fixture log: a chain written by the code of 1 December 2026, kept as an
export file so that every later version of the executor and the audit is held to the
same bytes (tests/audit/test_fixture_log.py).

The chain: the governance script of gov_kit (proposals, approvals, a withdrawal, an
expiry, recoveries, a constitution change), then the ledger kit's story (members, a task
claimed, submitted and approved, spends, a refund, a redemption and its payout, a
rejected and a duplicate transaction, an empty block), every block certified by three
validators and a checkpoint every four blocks.

Never regenerate the file to make a test pass: a change that alters these hashes changes
every existing chain. `python tests/audit/fixture_log.py` writes it again only for a new
fixture, under a new name, when the formats change on purpose.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "node"))
sys.path.insert(0, str(HERE))

from audit_kit import ADMIN, blocks_of, build_blocks, export_bytes  # noqa: E402
from gov_kit import governance_story  # noqa: E402
from ledger_kit import make_genesis, story  # noqa: E402

FIXTURE = HERE / "fixtures" / "log-2026-12-01-sets.export"
# the same chain in export format 1, written before checkpoints named a validator set:
# its genesis and block frames must stay byte for byte those of FIXTURE
FIXTURE_V1 = HERE / "fixtures" / "log-2026-12-01.export"


def fixture_blocks() -> list[tuple[int, list[bytes]]]:
    """(block time, envelopes) of every block: the governance script, then the story an
    hour after its last block."""
    governed, _decisions = governance_story(ADMIN)
    last = governed[-1][0]
    told = story(ADMIN)
    start = told[0][0]
    return governed + [(last + 3_600_000 + (t - start), envelopes) for t, envelopes in told]


def write(path: Path) -> None:
    genesis = make_genesis(ADMIN)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        build_blocks(data, genesis, fixture_blocks())
        genesis_bytes, blocks = blocks_of(data)
    path.write_bytes(export_bytes(genesis_bytes, blocks, genesis.hash()))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE
    if target.exists():
        sys.exit(f"{target} exists: a fixture is never rewritten (see this module's text)")
    write(target)
    print(f"wrote {target} ({target.stat().st_size} bytes)")
