"""The local link's frames (node/linkwire.py): what each side writes, the other reads back;
anything else is a LinkError, found at a header, before work is spent on what follows."""
from __future__ import annotations

import time

import msgpack
import pytest

from node import linkwire as wire
from node.linkwire import LinkError


def body_of(data: bytes) -> tuple[str, int, wire.Reader]:
    length = wire.frame_length(data[:4])
    assert length == len(data) - 4
    return wire.open_frame(data[4:])


def test_each_kind_reads_back_what_was_written():
    kind, rid, body = body_of(wire.frame("hello", 0, [wire.VERSION, 3, 4242]))
    assert (kind, rid, wire.read_hello(body)) == ("hello", 0, (3, 4242))
    kind, rid, body = body_of(wire.frame("submit", 7, [b"a" * 100, b"", b"b" * 16384]))
    assert (kind, rid, wire.read_submit(body)) == ("submit", 7, [b"a" * 100, b"", b"b" * 16384])
    answers = [[bytes(32), "pending", "", 0], [b"", "malformed", "too large", 0]]
    kind, rid, body = body_of(wire.frame("answer", 7, answers))
    assert wire.read_submitted(body, 2) == [("00" * 32, "pending", "", 0),
                                            (None, "malformed", "too large", 0)]
    _, _, body = body_of(wire.frame("answer", 8, [[bytes(32), "over_share", "", 3]]))
    assert wire.read_submitted(body, 1) == [("00" * 32, "over_share", "", 3)]
    for said in ("", "pending", "unknown_member"):
        _, _, body = body_of(wire.frame("answer", 4, said))
        assert wire.read_pending(body) == said
    ids = [bytes([i]) * 32 for i in range(3)]
    _, _, body = body_of(wire.notice_frame(12, ids, 2, 1))
    notice = wire.read_notice(body)
    assert notice == wire.Notice(12, tuple(i.hex() for i in ids), 2, 1)
    _, _, body = body_of(wire.frame("answer", 9, {"view": 2, "time": None, "validators": []}))
    assert wire.read_status(body) == {"view": 2, "time": None, "validators": []}
    _, _, body = body_of(wire.frame("pending", 3, bytes(32)))
    assert wire.read_tx_id(body) == bytes(32)


@pytest.mark.parametrize("header", [b"\x00\x00\x00\x00",
                                    (wire.MAX_FRAME_BYTES + 1).to_bytes(4, "big")])
def test_a_length_out_of_bounds_is_refused_before_anything_is_read(header):
    with pytest.raises(LinkError):
        wire.frame_length(header)


def raw(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


@pytest.mark.parametrize("name, data", [
    ("not an array", raw({"kind": "submit"})),
    ("two items", raw(["submit", 1])),
    ("unknown kind", raw(["shutdown", 1, []])),
    ("kind as bin", raw([b"submit", 1, []])),
    ("negative id", raw(["status", -1, []])),
    ("id over 32 bits", raw(["status", 1 << 32, []])),
    ("float id", raw(["status", 1.0, []])),
    ("a big small frame", raw(["status", 1, [b"x" * wire.MAX_SMALL_BYTES]])),
    ("cut short", raw(["status", 1, []])[:-1]),
])
def test_frames_of_the_wrong_shape_are_refused(name, data):
    with pytest.raises(LinkError):
        kind, _, body = wire.open_frame(data)
        wire.read_empty(body)


@pytest.mark.parametrize("name, body", [
    ("none", []),
    ("too many", [b"x"] * (wire.MAX_SUBMIT + 1)),
    ("text, not bin", ["envelope"]),
    ("nested", [[b"x"]]),
    ("an envelope too large", [b"x" * (16 * 1024 + 1)]),
])
def test_a_submit_of_the_wrong_shape_is_refused(name, body):
    _, _, reader = wire.open_frame(raw(["submit", 1, body]))
    with pytest.raises(LinkError):
        wire.read_submit(reader)


def test_bytes_after_the_value_are_refused():
    _, _, reader = wire.open_frame(raw(["submit", 1, [b"x"]]) + b"\xc0")
    with pytest.raises(LinkError):
        wire.read_submit(reader)


def test_a_notice_must_count_its_transactions():
    _, _, reader = wire.open_frame(raw(["notice", 0, [3, bytes(64), 2, 1]]))
    with pytest.raises(LinkError):
        wire.read_notice(reader)
    _, _, reader = wire.open_frame(raw(["notice", 0, [3, bytes(33), 1, 0]]))
    with pytest.raises(LinkError):
        wire.read_notice(reader)


def test_a_hello_of_another_version_is_refused():
    _, _, reader = wire.open_frame(raw(["hello", 0, [wire.VERSION + 1, 1, 100]]))
    with pytest.raises(LinkError):
        wire.read_hello(reader)


def test_hostile_frames_cost_a_header_not_their_size():
    """8 MiB of nested empty arrays or maps: refused at the first header that the shape
    does not allow, in far less time than decoding them would take (seconds)."""
    size = wire.MAX_FRAME_BYTES - 64
    for filler in (b"\x90", b"\x80", b"\x91"):
        data = b"\x93\xa6submit\x01\xdd" + size.to_bytes(4, "big") + filler * size
        started = time.perf_counter()
        with pytest.raises(LinkError):
            _, _, reader = wire.open_frame(data)
            wire.read_submit(reader)
        assert time.perf_counter() - started < 0.05
        data = b"\x93\xa6submit\x01\xdc\x03\xe8" + filler * size
        started = time.perf_counter()
        with pytest.raises(LinkError):
            _, _, reader = wire.open_frame(data)
            wire.read_submit(reader)
        assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize("name, answers", [
    ("too few", [[bytes(32), "pending", "", 0]]),
    ("not a list", {"a": 1}),
    ("an id of 31 bytes", [[bytes(31), "pending", "", 0]] * 2),
    ("a status as bin", [[bytes(32), b"pending", "", 0]] * 2),
    ("three items", [[bytes(32), "pending", ""]] * 2),
    ("a negative retry", [[bytes(32), "over_share", "", -1]] * 2),
    ("a retry of a day", [[bytes(32), "over_share", "", 86_400]] * 2),
    ("a retry as text", [[bytes(32), "over_share", "", "1"]] * 2),
    ("nested", [[[[]]]] * 2),
])
def test_answers_of_the_wrong_shape_are_refused(name, answers):
    _, _, reader = wire.open_frame(raw(["answer", 1, answers]))
    with pytest.raises(LinkError):
        wire.read_submitted(reader, 2)
