"""The tamper matrix of an export file: flipping any one byte of a small export, its end
frame included, fails the audit (docs/audit.md, "The export file")."""
from __future__ import annotations

import multiprocessing
import os
import struct
from concurrent.futures import ProcessPoolExecutor

import pytest

from audit_kit import audit_bytes, blocks_of, export_bytes, flips_that_pass
from node.audit.sources import Broken
from node.export import END_BYTES
from ops.cli import main

END_FRAME = 5 + END_BYTES           # u8 type | u32 length | 80 bytes
HEAD_HASH = slice(-END_FRAME + 5 + 16, -END_FRAME + 5 + 48)   # after the count and height


@pytest.fixture(scope="module")
def small(logged):
    """(an export of the first 4 blocks of the story log: block, checkpoint and end frames,
    its genesis, its blocks)."""
    path, genesis = logged
    genesis_bytes, blocks = blocks_of(path)
    blocks = blocks[:4]
    assert blocks[-1].checkpoint is not None        # every kind of frame is in the file
    return export_bytes(genesis_bytes, blocks, genesis.hash()), genesis, blocks


def failure(data: bytes, path):
    """The audit's failure of `data` as an export file (None when it passes)."""
    outcome = audit_bytes(data, path)
    return outcome if isinstance(outcome, Broken) else outcome.failure


def flipped(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0xFF
    return bytes(changed)


def test_the_small_export_passes_as_it_is(small, tmp_path):
    data = small[0]
    assert len(data) < 8_000        # keeps the matrix below a few seconds
    assert failure(data, tmp_path / "x.export") is None


def test_flipping_any_byte_of_an_export_fails_the_audit(small, tmp_path):
    data = small[0]
    # thousands of independent audits (a third of a minute in one process): shared by a
    # process per core, each taking every n-th byte
    n = min(os.cpu_count() or 1, 4)
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = pool.map(flips_that_pass, [data] * n,
                          [range(k, len(data), n) for k in range(n)], [tmp_path] * n)
        passed = sorted(i for share in shares for i in share)
    assert passed == [], f"flipping these bytes of {len(data)} passes the audit: {passed}"


def test_a_changed_head_hash_in_the_end_frame_fails_at_the_head(small, tmp_path):
    data, _, blocks = small
    assert data[HEAD_HASH] == blocks[-1].hash
    for i in range(32):
        found = failure(flipped(data, len(data) + HEAD_HASH.start + i), tmp_path / "x.export")
        assert found is not None and found.height == 4, i
        assert "head hash" in found.reason


def test_an_export_without_blocks_names_the_genesis_hash_as_its_head(small, tmp_path):
    _, genesis, _ = small
    data = export_bytes(genesis.canonical(), [], genesis.hash())
    assert data[HEAD_HASH] == genesis.hash()
    assert failure(data, tmp_path / "x.export") is None
    for i in range(len(data)):
        assert failure(flipped(data, i), tmp_path / "x.export") is not None, i


def test_the_cli_exits_1_on_a_changed_head_hash(small, tmp_path, capsys):
    data, genesis, _ = small
    path = tmp_path / "head.export"
    path.write_bytes(flipped(data, len(data) + HEAD_HASH.start))
    code = main(["audit", str(path), "--genesis-hash", genesis.hash().hex(), "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "audit FAILED at height 4" in out and "head hash" in out


def test_the_end_frame_is_where_the_tests_think_it_is(small):
    data = small[0]
    kind, length = struct.unpack(">BI", data[-END_FRAME:-END_BYTES])
    count, height = struct.unpack(">QQ", data[-END_BYTES:-END_BYTES + 16])
    assert (kind, length, count, height) == (4, END_BYTES, 4, 4)
