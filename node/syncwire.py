"""State sync between validators (docs/statesync.md): what a validator that syncs asks
its peers, and what they answer. Each is a msgpack array whose first item names it.

| ask                          | answer                                                  |
|------------------------------|---------------------------------------------------------|
| ["offers"]                   | ["offers", [[height, block hash, certificate, set hash], |
|                              |  ...] newest first, proof (node/setproof.py)]            |
| ["manifest", height]         | ["manifest", height, manifest (node/snapshots.py)]      |
| ["chunk", height, index]     | ["chunk", height, index, chunk bytes]                    |
| ["history", from, to]        | ["history", [[block record, [compact result, ...]], ...]]|
|                              | from `to` down, as many as fit half a frame              |

An answer of another kind than the ask, or to a question the validator did not ask,
is dropped by the asker. Every field is checked here for type and range; what the
fields mean is checked by the asker (node/statesync.py, node/history.py).
"""
from __future__ import annotations

from protocol import codec

MAX_OFFERS = 8
MAX_CERTIFICATE = 256


class SyncWireError(ValueError):
    pass


def _u(value) -> bool:
    return type(value) is int and 0 <= value < 1 << 64


def ask(*fields) -> bytes:
    return b"\x04" + codec.pack(list(fields))


def answer(*fields) -> bytes:
    return b"\x05" + codec.pack(list(fields))


def parse_ask(body: bytes) -> tuple:
    fields = codec.unpack(body, 256)
    if type(fields) is not list or not fields:
        raise SyncWireError("a state sync ask is an array")
    what, args = fields[0], fields[1:]
    shapes = {"offers": 0, "manifest": 1, "chunk": 2, "history": 2}
    if what not in shapes or len(args) != shapes[what] or not all(_u(a) for a in args):
        raise SyncWireError(f"not a state sync ask: {what!r} with {len(args)} fields")
    if what == "history" and not 1 <= args[0] <= args[1]:
        raise SyncWireError("a history ask is [from, to], 1 <= from <= to")
    return (what, *args)


def _hash(value) -> bool:
    return type(value) is bytes and len(value) == 32


def _certificate(value) -> tuple[tuple[int, bytes], ...]:
    if type(value) is not list or len(value) > MAX_CERTIFICATE or not all(
            type(e) is list and len(e) == 2 and _u(e[0]) and type(e[1]) is bytes
            for e in value):
        raise SyncWireError("a certificate is an array of [index, signature]")
    return tuple((i, s) for i, s in value)


def parse_answer(body: bytes, max_bytes: int) -> tuple:
    fields = codec.unpack(body, max_bytes)
    if type(fields) is not list or not fields:
        raise SyncWireError("a state sync answer is an array")
    what = fields[0]
    if what == "offers" and len(fields) == 3:
        offers = fields[1]
        if type(offers) is not list or len(offers) > MAX_OFFERS:
            raise SyncWireError("offers are an array")
        parsed = []
        for offer in offers:
            if type(offer) is not list or len(offer) != 4 or not _u(offer[0]) or \
                    offer[0] < 1 or not _hash(offer[1]) or not _hash(offer[3]):
                raise SyncWireError("an offer is [height, block hash, certificate, set hash]")
            parsed.append((offer[0], offer[1], _certificate(offer[2]), offer[3]))
        return what, parsed, fields[2]
    if what == "manifest" and len(fields) == 3 and _u(fields[1]) and \
            type(fields[2]) is bytes:
        return what, fields[1], fields[2]
    if what == "chunk" and len(fields) == 4 and _u(fields[1]) and _u(fields[2]) and \
            type(fields[3]) is bytes:
        return what, fields[1], fields[2], fields[3]
    if what == "history" and len(fields) == 2 and type(fields[1]) is list:
        blocks = []
        for item in fields[1]:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not bytes or \
                    type(item[1]) is not list or not all(type(r) is bytes for r in item[1]):
                raise SyncWireError("history is an array of [block record, [result, ...]]")
            blocks.append((item[0], item[1]))
        return what, blocks
    raise SyncWireError(f"not a state sync answer: {what!r}")
