"""The rules of node/handshake.py, sans-IO: both sides prove their genesis key (the
dialler first), agree on two directional keys, and any altered byte, foreign key, own
key, other chain or older protocol fails; the responder signs nothing for anyone who has
not proved a validator's key."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from node.frames import Sealer, pack_messages
from node.handshake import (CHALLENGE_BYTES, HELLO_BYTES, PROOF_BYTES, REPLY_BYTES,
                            ROLE_INITIATOR, HandshakeError, Initiator, Responder, Roster,
                            signed_bytes, transcript)

GENESIS = hashlib.sha256(b"genesis of the handshake tests").digest()
SEEDS = [hashlib.sha256(b"validator %d" % i).digest() for i in range(4)]
KEYS = tuple(bytes(SigningKey(seed).verify_key) for seed in SEEDS)
ROSTER = Roster(GENESIS, KEYS)
OUTSIDER_SEED = hashlib.sha256(b"outsider").digest()
OUTSIDER_KEY = bytes(SigningKey(OUTSIDER_SEED).verify_key)


def ephemeral(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def run(initiator: Initiator, responder: Responder, tamper=lambda step, data: data):
    responder.hello(tamper(0, initiator.hello()))
    proof = initiator.proof(tamper(1, responder.challenge()))
    responder.check(tamper(2, proof))
    reply, responder_session = responder.reply()
    initiator_session = initiator.finish(tamper(3, reply))
    return initiator_session, responder_session


def test_an_honest_handshake_gives_each_side_the_other_and_matching_keys():
    mine, theirs = run(Initiator(ROSTER, 0, SEEDS[0], 2, ephemeral("a")),
                       Responder(ROSTER, 2, SEEDS[2], ephemeral("b")))
    assert mine.peer == 2 and theirs.peer == 0
    assert mine.send_key == theirs.recv_key and mine.recv_key == theirs.send_key
    assert mine.send_key != mine.recv_key


def test_a_signing_key_object_serves_as_well_as_a_seed():
    mine, theirs = run(Initiator(ROSTER, 0, SigningKey(SEEDS[0]), 2, ephemeral("a")),
                       Responder(ROSTER, 2, SigningKey(SEEDS[2]), ephemeral("b")))
    assert mine.send_key == theirs.recv_key


def test_fresh_ephemeral_keys_give_fresh_link_keys():
    first, _ = run(Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("a")),
                   Responder(ROSTER, 1, SEEDS[1], ephemeral("b")))
    second, _ = run(Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("c")),
                    Responder(ROSTER, 1, SEEDS[1], ephemeral("b")))
    assert {first.send_key, first.recv_key}.isdisjoint({second.send_key, second.recv_key})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([(0, HELLO_BYTES), (1, CHALLENGE_BYTES), (2, PROOF_BYTES),
                        (3, REPLY_BYTES)]), st.data())
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


def test_the_challenge_carries_no_signature_and_a_bad_proof_gets_none():
    """Whoever knows a validator's public key (genesis is public) can send its HELLO;
    the responder answers with its key and a fresh ephemeral key only, and refuses to
    sign anything until the initiator's signature over both checks out."""
    responder = Responder(ROSTER, 3, SEEDS[3], ephemeral("r"))
    impostor = bytearray(Initiator(ROSTER, 1, SEEDS[1], 3, ephemeral("i")).hello())
    impostor[-64:-32] = KEYS[0]           # validator 0's public key, without its seed
    assert responder.hello(bytes(impostor)) == 0
    challenge = responder.challenge()
    assert len(challenge) == 64 and challenge[:32] == KEYS[3]
    with pytest.raises(HandshakeError, match="signature"):
        responder.check(bytes(64))
    with pytest.raises(AssertionError):
        responder.reply()
    assert not responder.proven


def test_a_key_outside_the_validator_set_is_refused_before_any_answer():
    # the outsider believes itself a validator; the responder's genesis says otherwise
    outsider_roster = Roster(GENESIS, KEYS + (OUTSIDER_KEY,))
    outsider = Initiator(outsider_roster, 4, OUTSIDER_SEED, 3, ephemeral("o"))
    responder = Responder(ROSTER, 3, SEEDS[3], ephemeral("r"))
    with pytest.raises(HandshakeError, match="not a validator"):
        responder.hello(outsider.hello())
    assert responder.peer is None
    with pytest.raises(AssertionError):
        responder.challenge()


def test_a_hello_with_the_responders_own_key_is_refused():
    # someone replaying validator 3's identity at validator 3
    mirror = Initiator(ROSTER, 3, SEEDS[3], 2, ephemeral("m"))
    with pytest.raises(HandshakeError, match="own key"):
        Responder(ROSTER, 3, SEEDS[3], ephemeral("r")).hello(mirror.hello())


def test_a_hello_for_another_chain_is_refused():
    other = Roster(hashlib.sha256(b"another chain").digest(), KEYS)
    with pytest.raises(HandshakeError, match="another chain"):
        Responder(ROSTER, 1, SEEDS[1], ephemeral("r")).hello(
            Initiator(other, 0, SEEDS[0], 1, ephemeral("i")).hello())


def test_a_hello_of_the_older_protocol_is_refused_with_a_reason_that_says_so():
    hello = b"stadsmunt/link/v1" + Initiator(ROSTER, 0, SEEDS[0], 1,
                                             ephemeral("i")).hello()[17:]
    with pytest.raises(HandshakeError, match="older link protocol"):
        Responder(ROSTER, 1, SEEDS[1], ephemeral("r")).hello(hello)


def test_the_link_policy_can_refuse_a_validator():
    responder = Responder(ROSTER, 1, SEEDS[1], ephemeral("r"), accept=lambda peer: peer < 1)
    with pytest.raises(HandshakeError, match="policy"):
        responder.hello(Initiator(ROSTER, 2, SEEDS[2], 1, ephemeral("i")).hello())


def test_a_challenge_from_another_validator_than_the_one_dialled_is_refused():
    initiator = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("i"))
    # validator 2 answers a dial meant for validator 1 (a wrong address, or an attack)
    responder = Responder(ROSTER, 2, SEEDS[2], ephemeral("r"))
    responder.hello(initiator.hello())
    with pytest.raises(HandshakeError, match="not the validator dialled"):
        initiator.proof(responder.challenge())


def test_a_reply_recorded_from_an_earlier_handshake_is_refused():
    earlier = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("earlier"))
    responder = Responder(ROSTER, 1, SEEDS[1], ephemeral("r"))
    responder.hello(earlier.hello())
    challenge = responder.challenge()
    responder.check(earlier.proof(challenge))
    recorded, _ = responder.reply()
    # the same challenge replayed to a new run of the initiator: its ephemeral key differs
    now = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("now"))
    now.proof(challenge)
    with pytest.raises(HandshakeError, match="signature"):
        now.finish(recorded)


def test_a_proof_recorded_from_an_earlier_handshake_is_refused():
    initiator = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("i"))
    first = Responder(ROSTER, 1, SEEDS[1], ephemeral("first"))
    first.hello(initiator.hello())
    recorded_proof = initiator.proof(first.challenge())
    # an attacker replays the hello and the proof against a fresh responder run
    second = Responder(ROSTER, 1, SEEDS[1], ephemeral("second"))
    second.hello(initiator.hello())
    second.challenge()
    with pytest.raises(HandshakeError, match="signature"):
        second.check(recorded_proof)
    assert not second.proven


def test_an_ephemeral_key_of_small_order_is_refused_on_either_side():
    initiator = Initiator(ROSTER, 0, SEEDS[0], 1, ephemeral("i"))
    with pytest.raises(HandshakeError, match="small order"):
        initiator.proof(KEYS[1] + bytes(32))
    # the responder finds out after the proof: no X25519 for an unproven initiator
    responder = Responder(ROSTER, 1, SEEDS[1], ephemeral("r"))
    responder.hello(initiator.hello()[:HELLO_BYTES - 32] + bytes(32))
    challenge = responder.challenge()
    signed = signed_bytes(ROLE_INITIATOR, transcript(GENESIS, KEYS[0], bytes(32), KEYS[1],
                                                     challenge[32:]))
    with pytest.raises(HandshakeError, match="small order"):
        responder.check(SigningKey(SEEDS[0]).sign(signed).signature)
    assert not responder.proven


def test_the_test_vectors_of_the_transport_doc_hold():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "transport.md").read_text()
    vectors = "".join(doc.split("## Test vectors", 1)[1].split())
    seeds = [bytes([1]) * 32, bytes([2]) * 32]
    roster = Roster(hashlib.sha256(b"vector genesis").digest(),
                    tuple(bytes(SigningKey(seed).verify_key) for seed in seeds))
    initiator = Initiator(roster, 0, seeds[0], 1, bytes([3]) * 32)
    responder = Responder(roster, 1, seeds[1], bytes([4]) * 32)
    hello = initiator.hello()
    responder.hello(hello)
    challenge = responder.challenge()
    proof = initiator.proof(challenge)
    responder.check(proof)
    reply, responder_session = responder.reply()
    session = initiator.finish(reply)
    assert responder_session.recv_key == session.send_key
    frame = Sealer(session.send_key).seal(pack_messages([b"hello", b""]))
    for label, value in [("genesishash", roster.genesis_hash), ("HELLO", hello),
                         ("CHALLENGE", challenge), ("PROOF", proof), ("REPLY", reply),
                         ("keyI->R", session.send_key), ("keyR->I", session.recv_key),
                         ('(empty):', frame)]:
        assert label + value.hex() in vectors, f"docs/transport.md: {label} differs"
