"""The rules of node/frames.py: frames authenticate in order and only in order, message
lists survive packing, and a send queue never exceeds its bounds and drops only its
oldest messages."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.frames import (HEADER, HEADER_BYTES, MESSAGE_OVERHEAD, TAG_BYTES, FrameError,
                         Opener, Sealer, SendQueue, frame_length, pack_messages,
                         unpack_messages)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
messages_lists = st.lists(st.binary(max_size=64), max_size=20)


def split(frame: bytes) -> tuple[bytes, bytes]:
    return frame[:HEADER_BYTES], frame[HEADER_BYTES:]


@given(messages_lists)
def test_packed_messages_unpack_to_the_same_list(messages):
    assert unpack_messages(pack_messages(messages)) == messages


@given(st.binary(max_size=200))
def test_unpacking_any_bytes_gives_an_exact_message_list_or_refuses(data):
    try:
        messages = unpack_messages(data)
    except FrameError:
        return
    assert pack_messages(messages) == data


@given(st.lists(messages_lists, min_size=1, max_size=8))
def test_frames_open_in_the_order_they_were_sealed(frames):
    sealer, opener = Sealer(KEY), Opener(KEY)
    for messages in frames:
        header, body = split(sealer.seal(pack_messages(messages)))
        assert frame_length(header, 1 << 20) == len(body)
        assert unpack_messages(opener.open(header, body)) == messages


@given(messages_lists, st.data())
def test_any_altered_bit_of_a_frame_is_detected(messages, data):
    frame = bytearray(Sealer(KEY).seal(pack_messages(messages)))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    header, body = split(bytes(frame))
    with pytest.raises(FrameError):
        Opener(KEY).open(header, body)


@given(st.lists(messages_lists, min_size=2, max_size=5), st.data())
def test_a_replayed_or_reordered_frame_is_detected(frames, data):
    sealer = Sealer(KEY)
    sealed = [split(sealer.seal(pack_messages(m))) for m in frames]
    opener = Opener(KEY)
    delivered = data.draw(st.integers(0, len(sealed) - 1))
    for header, body in sealed[:delivered]:
        opener.open(header, body)
    # anything but the next frame: one already opened (replay) or a later one (reorder)
    wrong = data.draw(st.integers(0, len(sealed) - 1).filter(lambda k: k != delivered))
    with pytest.raises(FrameError):
        opener.open(*sealed[wrong])


def test_a_frame_under_another_key_is_detected():
    header, body = split(Sealer(OTHER_KEY).seal(b""))
    with pytest.raises(FrameError):
        Opener(KEY).open(header, body)


@given(st.integers(0, 2 ** 32 - 1), st.integers(TAG_BYTES, 1 << 24))
def test_a_frame_length_outside_its_bounds_is_refused(length, limit):
    header = HEADER.pack(length)
    if TAG_BYTES <= length <= limit:
        assert frame_length(header, limit) == length
    else:
        with pytest.raises(FrameError):
            frame_length(header, limit)


operations = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers(0, 60)),
    st.tuples(st.just("take"), st.integers(0, 200))), max_size=80)


@given(operations, st.integers(MESSAGE_OVERHEAD + 4 + 60, 400), st.integers(1, 12))
def test_a_send_queue_stays_within_bounds_and_drops_only_its_oldest(ops, max_bytes,
                                                                    max_messages):
    queue = SendQueue(max_bytes, max_messages)
    pushed = 0
    taken: list[int] = []
    for op, size in ops:
        if op == "push":
            # each message names its own number, so order and identity can be checked
            before = list(queue)
            message = pushed.to_bytes(4, "big") + bytes(size)
            queue.push(message)
            pushed += 1
            after = list(queue)
            # only the oldest go, and never the message being pushed
            assert after == (before + [message])[len(before) + 1 - len(after):]
        else:
            batch = queue.take(size)
            assert sum(len(m) + MESSAGE_OVERHEAD for m in batch) <= size
            taken.extend(int.from_bytes(m[:4], "big") for m in batch)
        assert queue.bytes <= max_bytes and len(queue) <= max_messages
    rest = [int.from_bytes(m[:4], "big") for m in queue.take(max_bytes)]
    assert len(queue) == 0 and queue.bytes == 0
    delivered = taken + rest
    assert delivered == sorted(delivered), "messages leave in the order they came"
    assert len(delivered) + queue.dropped == pushed


def test_a_message_larger_than_the_queue_is_refused_not_queued():
    queue = SendQueue(100, 10)
    with pytest.raises(ValueError):
        queue.push(bytes(100))
    assert len(queue) == 0 and queue.dropped == 0
