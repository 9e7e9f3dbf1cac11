"""docs/protocol.md's test vectors are what the code computes: the page cannot drift."""
from __future__ import annotations

import hashlib
from pathlib import Path

from consensus.digest import batch_digest, commit_bytes
from node.genesis import Genesis, GenesisValidator, Organisation
from node.keys import Keypair
from protocol import codec
from protocol.envelope import make_body, seal, tx_id_of
from protocol.token import make_token, parse_token, token_message

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def vector(name: str) -> str:
    """The hex written after `name` at the start of a line of the doc's vectors."""
    for line in DOC.splitlines():
        words = line.split()
        if line.startswith("    ") and words[:-1] == name.split():
            return words[-1]
    raise AssertionError(f"no vector {name!r} in docs/protocol.md")


def test_the_documented_vectors_are_what_the_code_computes():
    pair = Keypair.from_seed(bytes(range(32)))
    steward = Keypair.from_seed(bytes(range(1, 33)))
    assert pair.public.hex() in DOC
    body = make_body("heerlen", "coin.spend", pair.public, 1, {"to": b"\x11" * 32,
                                                               "amount": 250})
    envelope = seal(pair, body)
    assert vector("body") == body.hex()
    assert vector("signature") == codec.unpack(envelope)[1].hex()
    assert vector("tx id") == tx_id_of(body)
    envelope_hash = hashlib.sha256(envelope).digest()
    assert vector("envelope hash") == envelope_hash.hex()
    token = make_token(pair, "heerlen", 1_740_000_000_000)
    assert vector("read token") == token
    key, ms, ms_text, signature = parse_token(token)
    assert (key, ms) == (pair.public, 1_740_000_000_000)
    assert vector("token message") == token_message("heerlen", ms_text).hex()
    assert signature == pair.sign(token_message("heerlen", ms_text))
    genesis = Genesis("heerlen", "Heerlen", "Heerlens Heitje", "HHT",
                      (GenesisValidator("municipality", pair.public),), (pair.public,),
                      (Organisation("municipality", (steward.public,)),))
    assert vector("genesis hash") == genesis.hash().hex()
    assert vector("domain") == genesis.domain().hex()
    digest = batch_digest(genesis.domain(), 1, 1_740_000_000_000, [envelope_hash])
    assert vector("batch digest") == digest.hex()
    assert vector("commit bytes (view 0)") == \
        commit_bytes(genesis.domain(), 0, 1, digest).hex()
