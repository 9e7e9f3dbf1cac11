"""The rules of node/handshake.py, sans-IO: both sides prove their genesis key, agree on
two directional keys, and any altered byte, foreign key, own key or other chain fails."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from node.frames import Sealer, pack_messages
from node.handshake import (FINISH_BYTES, HELLO_BYTES, REPLY_BYTES, HandshakeError,
                            Initiator, Responder, Roster)

GENESIS = hashlib.sha256(b"genesis of the handshake tests").digest()
SEEDS = [hashlib.sha256(b"validator %d" % i).digest() for i in range(4)]
KEYS = tuple(bytes(SigningKey(seed).verify_key) for seed in SEEDS)
ROSTER = Roster(GENESIS, KEYS)
OUTSIDER_SEED = hashlib.sha256(b"outsider").digest()
OUTSIDER_KEY = bytes(SigningKey(OUTSIDER_SEED).verify_key)


def ephemeral(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def run(initiator: Initiator, responder: Responder, tamper=lambda step, data: data):
    reply = responder.reply(tamper(0, initiator.hello()))
    finish, initiator_session = initiator.finish(tamper(1, reply))
    responder_session = responder.complete(tamper(2, finish))
    return initiator_session, responder_session


def test_an_honest_handshake_gives_each_side_the_other_and_matching_keys():
    mine, theirs = run(Initiator(ROSTER, 0, SEEDS[0], 2, ephemeral("a")),
                       Responder(ROSTER, 2, SEEDS[2], ephemeral("b")))
    assert mine.peer == 2 and theirs.peer == 0
    assert mine.send_key == theirs.recv_key and mine.recv_key == theirs.send_key
    assert mine.send_key != mine.recv_key


def test_fresh_ephemeral_keys_give_fresh_link_keys():
    first, _ = run(Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("a")),
                   Responder(ROSTER, 1, SEEDS[1], ephemeral("b")))
    second, _ = run(Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("c")),
                    Responder(ROSTER, 1, SEEDS[1], ephemeral("b")))
    assert {first.send_key, first.recv_key}.isdisjoint({second.send_key, second.recv_key})


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([(0, HELLO_BYTES), (1, REPLY_BYTES), (2, FINISH_BYTES)]), st.data())
def test_any_altered_handshake_byte_fails_the_handshake(step_and_size, data):
    step, size = step_and_size
    position = data.draw(st.integers(0, size - 1))
    flip = data.draw(st.integers(1, 255))

    def tamper(at: int, message: bytes) -> bytes:
        if at != step:
            return message
        altered = bytearray(message)
        altered[position] ^= flip
        return bytes(altered)

    with pytest.raises(HandshakeError):
        run(Initiator(ROSTER, 1, SEEDS[1], 3, ephemeral("i")),
            Responder(ROSTER, 3, SEEDS[3], ephemeral("r")), tamper)


def test_a_key_outside_the_validator_set_is_refused_before_the_responder_signs():
    # the outsider believes itself a validator; the responder's genesis says otherwise
    outsider_roster = Roster(GENESIS, KEYS + (OUTSIDER_KEY,))
    outsider = Initiator(outsider_roster, 4, OUTSIDER_SEED, 3, ephemeral("o"))
    responder = Responder(ROSTER, 3, SEEDS[3], ephemeral("r"))
    with pytest.raises(HandshakeError, match="not a validator"):
        responder.reply(outsider.hello())
    assert responder.peer is None


def test_a_hello_with_the_responders_own_key_is_refused():
    # someone replaying validator 3's identity at validator 3
    mirror = Initiator(ROSTER, 3, SEEDS[3], 2, ephemeral("m"))
    with pytest.raises(HandshakeError, match="own key"):
        Responder(ROSTER, 3, SEEDS[3], ephemeral("r")).reply(mirror.hello())


def test_a_hello_for_another_chain_is_refused():
    other = Roster(hashlib.sha256(b"another chain").digest(), KEYS)
    with pytest.raises(HandshakeError, match="another chain"):
        Responder(ROSTER, 1, SEEDS[1], ephemeral("r")).reply(
            Initiator(other, 0, SEEDS[0], 1, ephemeral("i")).hello())


def test_the_link_policy_can_refuse_a_validator():
    responder = Responder(ROSTER, 1, SEEDS[1], ephemeral("r"), accept=lambda peer: peer < 1)
    with pytest.raises(HandshakeError, match="policy"):
        responder.reply(Initiator(ROSTER, 2, SEEDS[2], 1, ephemeral("i")).hello())


def test_a_reply_from_another_validator_than_the_one_dialled_is_refused():
    initiator = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("i"))
    # validator 2 answers a dial meant for validator 1 (a wrong address, or an attack)
    reply = Responder(ROSTER, 2, SEEDS[2], ephemeral("r")).reply(initiator.hello())
    with pytest.raises(HandshakeError, match="not the validator dialled"):
        initiator.finish(reply)


def test_a_reply_recorded_from_an_earlier_handshake_is_refused():
    earlier = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("earlier"))
    recorded = Responder(ROSTER, 1, SEEDS[1], ephemeral("r")).reply(earlier.hello())
    with pytest.raises(HandshakeError, match="signature"):
        Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("now")).finish(recorded)


def test_a_finish_recorded_from_an_earlier_handshake_is_refused():
    initiator = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("i"))
    first = Responder(ROSTER, 1, SEEDS[1], ephemeral("first"))
    recorded_finish, _ = initiator.finish(first.reply(initiator.hello()))
    # an attacker replays the hello and the finish against a fresh responder run
    second = Responder(ROSTER, 1, SEEDS[1], ephemeral("second"))
    second.reply(initiator.hello())
    with pytest.raises(HandshakeError, match="signature"):
        second.complete(recorded_finish)


def test_an_ephemeral_key_of_small_order_is_refused():
    initiator = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("i"))
    hello = initiator.hello()
    zero_point = hello[:HELLO_BYTES - 32] + bytes(32)
    with pytest.raises(HandshakeError, match="small order"):
        Responder(ROSTER, 1, SEEDS[1], ephemeral("r")).reply(zero_point)


def test_the_test_vectors_of_the_transport_doc_hold():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "transport.md").read_text()
    vectors = "".join(doc.split("## Test vectors", 1)[1].split())
    seeds = [bytes([1]) * 32, bytes([2]) * 32]
    roster = Roster(hashlib.sha256(b"vector genesis").digest(),
                    tuple(bytes(SigningKey(seed).verify_key) for seed in seeds))
    initiator = Initiator(roster, 0, seeds[0], 1, bytes([3]) * 32)
    responder = Responder(roster, 1, seeds[1], bytes([4]) * 32)
    hello = initiator.hello()
    reply = responder.reply(hello)
    finish, session = initiator.finish(reply)
    assert responder.complete(finish).recv_key == session.send_key
    frame = Sealer(session.send_key).seal(pack_messages([b"hello", b""]))
    for label, value in [("genesishash", roster.genesis_hash), ("HELLO", hello),
                         ("REPLY", reply), ("FINISH", finish),
                         ("keyI->R", session.send_key), ("keyR->I", session.recv_key),
                         ('(empty):', frame)]:
        assert label + value.hex() in vectors, f"docs/transport.md: {label} differs"
