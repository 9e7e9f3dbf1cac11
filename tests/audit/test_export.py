"""The export file: written and read as a stream, and any change to it, even one byte or a
cut, fails the audit."""
from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit_kit import BlockList, blocks_of, export_bytes, read_export, run_audit
from audit_kit import audit_bytes as audit_of_bytes
from node.audit import audit
from node.audit.sources import Broken
from node.export import BLOCK, MAGIC, ExportError, ExportReader, block_payload


@pytest.fixture(scope="module")
def exported(logged):
    path, genesis = logged
    genesis_bytes, blocks = blocks_of(path)
    return export_bytes(genesis_bytes, blocks, genesis.hash()), blocks, genesis


def audit_bytes(data: bytes, tmp_path, name="chain.export", **kwargs):
    return audit_of_bytes(data, tmp_path / name, **kwargs)


def failure_of(outcome):
    return outcome if isinstance(outcome, Broken) else outcome.failure


def test_an_export_reads_back_the_blocks_and_genesis_it_was_written_with(exported):
    data, blocks, genesis = exported
    genesis_bytes, read = read_export(data)
    assert genesis_bytes == genesis.canonical() and read == blocks
    assert data.startswith(MAGIC + b"\x00\x00\x00\x02\x01")


def test_an_export_audits_to_the_same_summary_as_the_store_it_came_from(exported, logged,
                                                                        tmp_path):
    data, blocks, genesis = exported
    from_file = audit_bytes(data, tmp_path, pin=genesis.hash())
    genesis_bytes, _ = blocks_of(logged[0])
    from_store = run_audit(genesis_bytes, blocks, pin=genesis.hash())
    keep = ("blocks", "transactions", "minted", "redeemed", "head", "checkpoints")
    assert from_file.failure is None
    assert {k: from_file.summary[k] for k in keep} == {k: from_store.summary[k] for k in keep}


def frames_of(data: bytes) -> list[tuple[int, int, int, int]]:
    """(type, first byte, end, block frames before it) of every frame of an export."""
    out, offset, count = [], len(MAGIC) + 4, 0
    while offset < len(data):
        kind, length = struct.unpack(">BI", data[offset:offset + 5])
        out.append((kind, offset, offset + 5 + length, count))
        count += kind == BLOCK
        offset += 5 + length
    return out


def cut_height(data: bytes, cut: int) -> int:
    """The height a cut at `cut` must fail at: inside a block frame that block's; inside a
    checkpoint frame its block's; inside the end frame the head; between frames the last
    whole block; inside the header or the genesis 0."""
    for kind, start, end, before in frames_of(data):
        if start < cut < end:
            return before + 1 if kind == BLOCK else before
        if cut == start:
            return before
    raise AssertionError(cut)


def test_an_export_cut_short_anywhere_fails_at_the_block_it_cuts(exported, tmp_path):
    data, blocks, _ = exported
    for cut in list(range(0, len(data), 97)) + [len(data) - 1]:
        failure = failure_of(audit_bytes(data[:cut], tmp_path))
        assert failure is not None, cut
        assert "cut short" in failure.reason
        assert failure.height == (cut_height(data, cut) if cut >= len(MAGIC) + 4 else 0), cut
    # cut inside the frame of block 5: that block could not be read, not block 4
    fifth = [start for kind, start, _, before in frames_of(data)
             if kind == BLOCK and before == 4][0]
    for cut in (fifth + 2, fifth + 5, fifth + 40):
        failure = failure_of(audit_bytes(data[:cut], tmp_path))
        assert failure.height == 5 and "cut short" in failure.reason, cut
    # cut just before the end frame: every block is whole, the end is missing
    failure = failure_of(audit_bytes(data[:-(5 + 80)], tmp_path))
    assert failure.height == len(blocks) and "cut short" in failure.reason


def test_bytes_after_the_end_frame_fail(exported, tmp_path):
    data, blocks, _ = exported
    failure = failure_of(audit_bytes(data + b"\x00", tmp_path))
    assert failure.height == len(blocks) and "after the end frame" in failure.reason


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_of_an_export_fails_the_audit(exported, tmp_path, data):
    original, blocks, genesis = exported
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    xor = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(original)
    changed[position] ^= xor
    failure = failure_of(audit_bytes(bytes(changed), tmp_path))
    assert failure is not None, (position, xor)
    assert 0 <= failure.height <= len(blocks)


def test_the_reader_refuses_a_file_that_is_not_an_export():
    with pytest.raises(ExportError, match="magic"):
        ExportReader(io.BytesIO(b"PK\x03\x04" + bytes(40)))
    with pytest.raises(ExportError, match="cut short"):
        ExportReader(io.BytesIO(MAGIC[:5]))


def test_a_block_list_source_and_its_export_agree(exported):
    data, blocks, genesis = exported
    genesis_bytes, read = read_export(data)
    report = audit([BlockList(genesis_bytes, read, "export"),
                    BlockList(genesis_bytes, blocks, "store")], jobs=1)
    assert report.failure is None and not report.warnings[1:]


class CountingStream(io.BytesIO):
    """A file that remembers the furthest byte read from it."""

    furthest = 0

    def read(self, size=-1):
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def test_the_reader_streams_a_block_at_a_time(exported):
    data, blocks, _ = exported
    stream = CountingStream(data)
    reader = ExportReader(stream)
    first = next(reader.blocks())
    assert first == blocks[0]
    # block 1 is handed out once the next frame shows it has no checkpoint: the reader
    # has read the genesis and at most two block frames, not the file
    frames = [5 + len(block_payload(b)) for b in blocks[:2]]
    assert stream.furthest == len(MAGIC) + 4 + 5 + len(reader.genesis_bytes) + sum(frames)
    assert stream.furthest < len(data) // 2


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=300), keep_magic=st.booleans())
def test_any_bytes_as_an_export_exit_1_without_a_traceback(tmp_path, capsys, junk, keep_magic):
    from ops.cli import main
    path = tmp_path / "junk.export"
    path.write_bytes((MAGIC + b"\x00\x00\x00\x02" if keep_magic else b"") + junk)
    code = main(["audit", str(path), "--jobs", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err and "stopped" not in err
