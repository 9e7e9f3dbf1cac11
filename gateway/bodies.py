"""Request bodies, read with a bound on everything before any decoding work starts.

A body is read up to its limit (413 beyond it), within the app's body timeout
(`[gateway] body_timeout_s`, BODY_TIMEOUT_S: 408 `timeout` when it is late). Then, before
a decoder builds anything, what it would build is bounded, so that the work is
proportional to what can be accepted:

- JSON: the bodies the gateway accepts are `{"envelope": "<base64>"}` and
  `{"envelopes": ["<base64>", ...]}`: one object, at most one array, at most one comma
  per envelope. Base64 and those keys hold no brackets or commas, so counting the bytes
  `{`, `[` and `,` (in C, one pass each) bounds the containers, the nesting depth and the
  items that `json.loads` would make. A body nested 5,000 deep, or 8 MiB of `[],`, is a
  400 after three counts, not a 500 or seconds of work.
- msgpack batches: the header of the array and of each item is read before the item: an
  array of more than MAX_BATCH items, or an item that is not bin, is refused at that
  header. 8 MiB of nested empty arrays or maps costs one header, not millions of objects
  (it cost 3 to 6 s of the event loop when the body was decoded first).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import struct

from aiohttp import web

from gateway.problems import Problem

MAX_JSON_CONTAINERS = 4       # the accepted bodies hold two; a little room for refusals
COMMA_ROOM = 16               # commas beyond one per item, for refusals with their words
_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")
BODY_TIMEOUT_S = web.AppKey("body_timeout_s", float)   # set by gateway/connections.py
DEFAULT_BODY_TIMEOUT_S = 30.0


async def read(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "too_large", f"The body is over the limit of {limit} bytes.")
    timeout_s = request.app.get(BODY_TIMEOUT_S, DEFAULT_BODY_TIMEOUT_S)
    data = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise Problem(413, "too_large",
                                  f"The body is over the limit of {limit} bytes.")
    except TimeoutError:
        raise Problem(408, "timeout",
                      f"The body did not arrive within {timeout_s:g} s.") from None
    except ConnectionError:
        # the client went away: nothing can be answered, and nothing is logged
        raise Problem(400, "malformed", "The connection closed before the whole body "
                                        "arrived.") from None
    return bytes(data)


def json_object(data: bytes, max_items: int) -> dict:
    """A JSON object of at most `max_items` list items, or Problem 400."""
    if data.count(b"{") + data.count(b"[") > MAX_JSON_CONTAINERS:
        raise Problem(400, "malformed", "The body nests lists or objects where none "
                                        "belong.")
    if data.count(b",") > max_items + COMMA_ROOM:
        raise Problem(400, "malformed", f"The body holds more than {max_items} items.")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Problem(400, "malformed", "The body is not valid JSON.") from None
    if type(value) is not dict:
        raise Problem(400, "malformed", "The body must be a JSON object.")
    return value


def b64(text, where: str) -> bytes:
    if type(text) is not str:
        raise Problem(400, "malformed", f"{where} must be a base64 string.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "malformed", f"{where} is not valid base64.") from None


def msgpack_bins(data: bytes, max_count: int) -> list[bytes]:
    """The items of a msgpack array of 1 to `max_count` bin values (exactly what the
    strict decoder gives for such a body, protocol/codec.py), or Problem 400."""
    shape = Problem(400, "malformed", "The body must be a msgpack array of envelopes "
                                      "(each the envelope's bytes as bin).")
    if not data:
        raise shape
    tag, pos = data[0], 1
    if 0x90 <= tag <= 0x9f:
        count = tag & 0x0f
    elif tag == 0xdc and len(data) >= 3:
        count, pos = _U16.unpack_from(data, 1)[0], 3
    elif tag == 0xdd and len(data) >= 5:
        count, pos = _U32.unpack_from(data, 1)[0], 5
    else:
        raise shape
    if not 1 <= count <= max_count:
        raise Problem(400, "malformed", f"Send 1 to {max_count} envelopes.")
    items, end = [], len(data)
    for _ in range(count):
        if pos >= end:
            raise shape
        tag = data[pos]
        if tag == 0xc4 and pos + 2 <= end:
            length, pos = data[pos + 1], pos + 2
        elif tag == 0xc5 and pos + 3 <= end:
            length, pos = _U16.unpack_from(data, pos + 1)[0], pos + 3
        elif tag == 0xc6 and pos + 5 <= end:
            length, pos = _U32.unpack_from(data, pos + 1)[0], pos + 5
        else:
            raise shape
        if pos + length > end:
            raise shape
        items.append(data[pos:pos + length])
        pos += length
    if pos != end:
        raise Problem(400, "malformed", "The body is not strict msgpack (bytes after the "
                                        "array).")
    return items
