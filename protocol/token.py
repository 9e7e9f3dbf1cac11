"""Read tokens (docs/api.md, "Read tokens"; docs/protocol.md, "Read tokens").

A token is `KEYHEX.MS.SIGHEX`: a 32-byte key in lowercase hex, a time in milliseconds as
plain decimal, and that key's Ed25519 signature over
`b"stadsmunt/read/v1" + chain id + b"|" + the decimal time` (the text as sent, so nothing
is re-encoded). The client makes one with make_token; the gateway reads it with
parse_token, then checks the signature over token_message and the time against
TOKEN_LIFETIME_MS (gateway/auth.py).
"""
from __future__ import annotations

from protocol.envelope import Signer
from protocol.limits import KEY_BYTES, SIGNATURE_BYTES

READ_TAG = b"stadsmunt/read/v1"
MAX_MS_DIGITS = 16
_HEX = frozenset("0123456789abcdef")


class TokenError(ValueError):
    """Text that is not a read token; the message says what is wrong, in a sentence."""


def token_message(chain: str, ms_text: str) -> bytes:
    """What a token's key signs: the tag, the chain id and the time as written."""
    return READ_TAG + chain.encode() + b"|" + ms_text.encode()


def make_token(signer: Signer, chain: str, ms: int) -> str:
    """A read token signed by `signer` at time `ms`."""
    ms_text = str(ms)
    signature = signer.sign(token_message(chain, ms_text))
    return f"{signer.public.hex()}.{ms_text}.{signature.hex()}"


def _hex(text: str, size: int) -> bytes | None:
    if len(text) != 2 * size or not _HEX.issuperset(text):
        return None
    return bytes.fromhex(text)


def parse_token(token: str) -> tuple[bytes, int, str, bytes]:
    """(key, ms, the decimal time as sent, signature) of a token of the right form, or
    TokenError. Neither the signature nor the time is checked here."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("A read token is KEYHEX.MS.SIGHEX.")
    key_hex, ms_text, sig_hex = parts
    key, signature = _hex(key_hex, KEY_BYTES), _hex(sig_hex, SIGNATURE_BYTES)
    if key is None or signature is None:
        raise TokenError(f"A read token's key is {2 * KEY_BYTES} and its signature "
                         f"{2 * SIGNATURE_BYTES} lowercase hex characters.")
    if not ms_text.isascii() or not ms_text.isdigit() or len(ms_text) > MAX_MS_DIGITS or \
            (len(ms_text) > 1 and ms_text[0] == "0"):
        raise TokenError("A read token's time is milliseconds in plain decimal.")
    return key, int(ms_text), ms_text, signature
