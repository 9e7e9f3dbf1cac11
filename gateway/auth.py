"""Read tokens (contract: "Reading personal data"), as the gateway checks them.

A token's form and the bytes its key signs are the protocol's (protocol/token.py):
`KEYHEX.MS.SIGHEX`, the key's signature over `b"stadsmunt/read/v1" + chain id + b"|" +
the decimal time`. It rides in `Authorization: Stadsmunt <token>` or, for a browser's
EventSource that cannot set headers, in `?auth=<token>`, and is good within five minutes
of its time, either side (clocks drift both ways).

A missing, malformed, expired or wrongly signed token is 401 `unauthenticated`; a good
token whose key may not read the thing is 403 `forbidden`. Admins, reviewers and
auditors (while active) and the validators of the set in force at the head read
everything (a validator a set change removed reads as anyone else from then on). An active steward
reads proposals in full and the accounts named in open recoveries and in the args of
open proposals (while they are open), to judge them.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

from chaincode import queries
from gateway.appkeys import NODE, TOKENS
from gateway.chainhead import head_time_ms
from gateway.problems import Problem
from node import sets
from node.keys import verify
from protocol.limits import TOKEN_LIFETIME_MS
from protocol.token import TokenError, parse_token, token_message

READ_EVERYTHING = frozenset(("admin", "reviewer", "auditor"))
VERIFIED_CACHE = 4096            # tokens whose signature this process has checked


@dataclass(frozen=True, slots=True)
class Reader:
    key: bytes
    everything: bool      # may read every account, claim, block and event
    steward: bool = False  # an active steward: proposals in full, accounts under governance

    @property
    def governs(self) -> bool:
        """May see the keys in a recovery's proposal (docs/api.md, "Read tokens")."""
        return self.everything or self.steward


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", detail,
                   headers={"WWW-Authenticate": 'Stadsmunt realm="stadsmunt"'})


def parse(token: str) -> tuple[bytes, int, str, bytes]:
    """(key, ms, the decimal time as sent, signature), or Problem 401."""
    try:
        return parse_token(token)
    except TokenError as error:
        raise _unauthenticated(str(error)) from None


class Tokens:
    """Checks tokens for one chain; remembers the ones it verified, so a client that reads
    many pages with one token costs one signature check."""

    def __init__(self, chain: str, genesis=None,
                 clock_ms=lambda: time.time_ns() // 1_000_000):
        """`genesis`: the chain's, whose validators read everything until a set change
        (node/sets.py); None: no key reads as a validator (tests)."""
        self.chain, self.genesis = chain, genesis
        self.clock_ms = clock_ms
        self._verified: OrderedDict[str, None] = OrderedDict()

    def key_of(self, token: str) -> bytes:
        """The key of a well-formed, fresh, well-signed token, or Problem 401."""
        key, ms, ms_text, signature = parse(token)
        if abs(self.clock_ms() - ms) > TOKEN_LIFETIME_MS:
            raise _unauthenticated("The read token has expired (or is from the future); "
                                   "make a new one.")
        if token in self._verified:
            self._verified.move_to_end(token)
            return key
        if not verify(key, token_message(self.chain, ms_text), signature):
            raise _unauthenticated("The read token's signature is not valid for this chain.")
        self._verified[token] = None
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return key

    @staticmethod
    def token_of(request: web.Request) -> str | None:
        """The request's token (header first, then ?auth=), or None."""
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "stadsmunt" or not token.strip():
                raise _unauthenticated("Send Authorization: Stadsmunt <token>.")
            return token.strip()
        return request.query.get("auth")

    def expires_ms(self, request: web.Request) -> int:
        """When the request's (good) token stops being valid."""
        return parse(self.token_of(request))[1] + TOKEN_LIFETIME_MS

    def reader(self, request: web.Request) -> Reader | None:
        """Who is reading: None without a token; Problem 401 for a bad one."""
        token = self.token_of(request)
        if token is None:
            return None
        key = self.key_of(token)
        store = request.app[NODE].store
        if self.genesis is not None and key in sets.in_force(
                self.genesis, store, store.head()[0] + 1).keys:
            return Reader(key, True)
        member = queries.member(store, key)
        active = bool(member and member["active"])
        return Reader(key, active and member["role"] in READ_EVERYTHING,
                      active and member["role"] == "steward")


def identify(request: web.Request) -> Reader:
    """The reader of a request that needs a token (401 without a good one)."""
    reader = request.app[TOKENS].reader(request)
    if reader is None:
        raise _unauthenticated("This needs a read token: Authorization: Stadsmunt <token>.")
    return reader


def allow(reader: Reader, account: bytes | None = None) -> Reader:
    """403 unless the reader may read `account` (or everything, when None)."""
    if reader.everything or (account is not None and reader.key == account):
        return reader
    raise Problem(403, "forbidden", "This read token may not read this.")


def require(request: web.Request, account: bytes | None = None) -> Reader:
    return allow(identify(request), account)


def allow_account(request: web.Request, reader: Reader, account: bytes) -> Reader:
    """allow(), and a steward may also read an account that an open recovery or an open
    proposal names, judged at the head block's time."""
    if reader.steward and not reader.everything and reader.key != account:
        store = request.app[NODE].store
        if queries.named_in_governance(store, account, head_time_ms(store)):
            return reader
    return allow(reader, account)


def require_account(request: web.Request, account: bytes) -> Reader:
    return allow_account(request, identify(request), account)


def optional(request: web.Request) -> Reader | None:
    return request.app[TOKENS].reader(request)
