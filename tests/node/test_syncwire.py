"""The state sync frames (node/syncwire.py, docs/statesync.md "Between validators"):
each documented question and answer is taken, anything else refused with SyncWireError
(or, for bytes that are no strict msgpack at all, by the frame parser)."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from node import peering, syncwire
from node.syncwire import SyncWireError, parse_answer, parse_ask
from protocol import codec

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
H = bytes(range(32))
SIG = bytes(64)
BIG = 1 << 20


def body(*fields) -> bytes:
    return codec.pack(list(fields))


# ---- questions ------------------------------------------------------------------------

@given(U64, U64)
def test_every_documented_question_is_taken(a, b):
    assert parse_ask(body("offers")) == ("offers",)
    assert parse_ask(body("manifest", a)) == ("manifest", a)
    assert parse_ask(body("chunk", a, b)) == ("chunk", a, b)
    low, high = sorted((max(a, 1), max(b, 1)))
    assert parse_ask(body("history", low, high)) == ("history", low, high)


def test_a_question_goes_through_its_frame():
    frame = syncwire.ask("chunk", 64, 3)
    assert frame[0] == peering.SYNC_ASK
    assert peering.parse(frame, BIG) == (peering.SYNC_ASK, ("chunk", 64, 3))


@pytest.mark.parametrize("fields", [
    ["snapshot", 64],                       # an unknown kind
    [b"offers"],                            # the kind as bytes
    [4],
    [],
    ["offers", 1],                          # a field too many
    ["manifest"],                           # a field missing
    ["manifest", 64, 1],
    ["chunk", 64],
    ["chunk", 64, 1, 2],
    ["history", 1],
    ["history", 1, 2, 3],
    ["manifest", -1],                       # negative
    ["chunk", 64, -3],
    ["history", -1, 5],
    ["manifest", "64"],                     # not an integer
    ["manifest", b"\x40"],
    ["manifest", True],
    ["chunk", 64, [1]],
    ["history", 5, 4],                      # from above to
    ["history", 0, 4],                      # from below 1
    ["history", 0, 0],
])
def test_a_question_of_another_shape_is_refused(fields):
    with pytest.raises(SyncWireError):
        parse_ask(codec.pack(fields))


@pytest.mark.parametrize("raw", [codec.pack({"offers": 1}), codec.pack("offers"),
                                 codec.pack(7)])
def test_a_question_that_is_no_array_is_refused(raw):
    with pytest.raises(SyncWireError):
        parse_ask(raw)


def test_integers_are_u64_and_questions_small():
    top = (1 << 64) - 1                     # the largest msgpack integer is a u64
    assert parse_ask(body("history", top, top)) == ("history", top, top)
    with pytest.raises(SyncWireError):
        parse_ask(body("chunk", 64, -(1 << 63)))
    # trailing bytes, no msgpack, a question above 256 bytes: the frame is refused
    for raw in (body("offers") + b"\x00", b"\xc1", body("offers", "x" * 300)):
        with pytest.raises(peering.PeerFrameError):
            peering.parse(b"\x04" + raw, BIG)


# ---- answers --------------------------------------------------------------------------

def test_every_documented_answer_is_taken():
    offers = [[64, H, [[0, SIG], [2, SIG]], H], [128, H, [], H]]
    assert parse_answer(body("offers", offers, [["proof"]]), BIG) == (
        "offers", [(64, H, ((0, SIG), (2, SIG)), H), (128, H, (), H)], [["proof"]])
    assert parse_answer(body("offers", [], []), BIG) == ("offers", [], [])
    assert parse_answer(body("manifest", 64, b"m"), BIG) == ("manifest", 64, b"m")
    assert parse_answer(body("chunk", 64, 2, b"c"), BIG) == ("chunk", 64, 2, b"c")
    history = [[b"record", [b"r1", b"r2"]], [b"record2", []]]
    assert parse_answer(body("history", history), BIG) == (
        "history", [(b"record", [b"r1", b"r2"]), (b"record2", [])])
    assert parse_answer(body("history", []), BIG) == ("history", [])


def test_an_answer_goes_through_its_frame():
    frame = syncwire.answer("manifest", 64, b"m")
    assert frame[0] == peering.SYNC_ANSWER
    assert peering.parse(frame, BIG) == (peering.SYNC_ANSWER, ("manifest", 64, b"m"))


def offer(**changes) -> list:
    fields = {"height": 64, "hash": H, "certificate": [[0, SIG]], "set": H}
    fields.update(changes)
    return list(fields.values())


@pytest.mark.parametrize("fields", [
    ["snapshot", 64],                                   # an unknown kind
    [],
    [b"offers", [], []],
    ["offers", []],                                     # the proof missing
    ["offers", [], [], 1],
    ["offers", {}, []],
    ["offers", [offer()] * (syncwire.MAX_OFFERS + 1), []],
    ["offers", [offer()[:3]], []],                      # an offer of three fields
    ["offers", [offer() + [1]], []],
    ["offers", [offer(height=-1)], []],
    ["offers", [offer(height=0)], []],                  # no checkpoint at 0
    ["offers", [offer(height="64")], []],
    ["offers", [offer(hash="00" * 32)], []],
    ["offers", [offer(hash=H[:31])], []],               # hashes of 32 bytes
    ["offers", [offer(set=H + b"\x00")], []],
    ["offers", [offer(certificate={})], []],
    ["offers", [offer(certificate=[[0]])], []],
    ["offers", [offer(certificate=[[-1, SIG]])], []],
    ["offers", [offer(certificate=[[0, "sig"]])], []],
    ["offers", [offer(certificate=[[0, SIG]] * (syncwire.MAX_CERTIFICATE + 1))], []],
    ["manifest", 64],
    ["manifest", -64, b"m"],
    ["manifest", 64, "m"],
    ["manifest", 64, b"m", 1],
    ["chunk", 64, 2],
    ["chunk", 64, -2, b"c"],
    ["chunk", -64, 2, b"c"],
    ["chunk", 64, 2, "c"],
    ["history"],
    ["history", [], []],
    ["history", {}],
    ["history", [[b"record"]]],
    ["history", [[b"record", b"r1"]]],
    ["history", [[b"record", ["r1"]]]],
    ["history", [["record", []]]],
    ["history", [b"record"]],
])
def test_an_answer_of_another_shape_is_refused(fields):
    with pytest.raises(SyncWireError):
        parse_answer(codec.pack(fields), BIG)


def test_an_answer_larger_than_the_frame_limit_is_refused():
    raw = body("chunk", 64, 2, bytes(1000))
    assert parse_answer(raw, len(raw))[3] == bytes(1000)
    with pytest.raises(peering.PeerFrameError):
        peering.parse(b"\x05" + raw, len(raw) - 1)
