"""The wire forms that client and server share (protocol/): an envelope's transaction id
however it is read, and the read token's text, as made and as parsed."""
from __future__ import annotations

import msgpack
import pytest

from node.keys import Keypair
from protocol import codec
from protocol.envelope import (envelope_tx_id, make_body, seal, split_envelope, tx_id_of,
                               tx_id_of_envelope)
from protocol.limits import MAX_ENVELOPE_BYTES
from protocol.token import TokenError, make_token, parse_token, token_message

KEY = Keypair.from_seed(bytes(range(32)))


def test_an_envelope_has_one_transaction_id_however_it_is_read():
    body = make_body("heerlen", "task.claim", KEY.public, 7, {"task": "t1"})
    envelope = seal(KEY, body)
    assert split_envelope(envelope) == (body, KEY.sign(b"stadsmunt/tx/v1" + body))
    assert tx_id_of_envelope(envelope) == envelope_tx_id(envelope) == tx_id_of(body)
    # bin 16 for a short body: not the usual form, so only the strict decoder reads it
    odd = b"\x92\xc5" + len(body).to_bytes(2, "big") + body + msgpack.packb(
        KEY.sign(b"stadsmunt/tx/v1" + body), use_bin_type=True)
    assert codec.unpack(odd) == [body, KEY.sign(b"stadsmunt/tx/v1" + body)]
    assert tx_id_of_envelope(odd) == tx_id_of(body)


@pytest.mark.parametrize("raw", [b"", b"\x90", codec.pack(["text", b"sig"]),
                                 codec.pack([b"body"]), codec.pack({"a": 1}),
                                 b"\x92\xc4\x00" + bytes(MAX_ENVELOPE_BYTES)])
def test_bytes_that_are_no_envelope_have_no_transaction_id(raw):
    assert envelope_tx_id(raw) is None
    with pytest.raises(codec.CodecError):
        tx_id_of_envelope(raw)


def test_a_token_parses_back_to_what_was_signed():
    token = make_token(KEY, "heerlen", 1_740_000_000_000)
    key, ms, ms_text, signature = parse_token(token)
    assert (key, ms, ms_text) == (KEY.public, 1_740_000_000_000, "1740000000000")
    assert signature == KEY.sign(token_message("heerlen", ms_text))
    assert token_message("heerlen", ms_text) == b"stadsmunt/read/v1heerlen|1740000000000"


@pytest.mark.parametrize("change, words", [
    (lambda t: t + ".x", "KEYHEX.MS.SIGHEX"),
    (lambda t: t.upper(), "lowercase hex"),
    (lambda t: t[2:], "lowercase hex"),
    (lambda t: t.replace(".1740000000000.", ".01740000000000."), "plain decimal"),
    (lambda t: t.replace(".1740000000000.", ".+1740000000000."), "plain decimal"),
    (lambda t: t.replace(".1740000000000.", "." + "1" * 17 + "."), "plain decimal"),
    (lambda t: t.replace(".1740000000000.", ".１７."), "plain decimal"),
])
def test_a_token_of_another_form_is_refused_with_what_is_wrong(change, words):
    with pytest.raises(TokenError, match=words):
        parse_token(change(make_token(KEY, "heerlen", 1_740_000_000_000)))
