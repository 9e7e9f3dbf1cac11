"""Bodies built to make a decoder work: each is a 400 found before the work, quickly, and
never a 500 (gateway/bodies.py). Before the bounds, 8 MiB of msgpack empty arrays took
3 to 6 s of the event loop, and JSON nested 5,000 deep was a 500 (RecursionError)."""
from __future__ import annotations

import base64
import time

import pytest

MIB8 = 8 * 1024 * 1024
MSGPACK = {"Content-Type": "application/msgpack"}
JSON = {"Content-Type": "application/json"}


def array32(filler: bytes) -> bytes:
    count = (MIB8 - 5) // len(filler)
    return b"\xdd" + count.to_bytes(4, "big") + filler * count


HOSTILE = [
    ("8 MiB msgpack of empty arrays", "/v1/txs", MSGPACK, array32(b"\x90")),
    ("8 MiB msgpack of empty maps", "/v1/txs", MSGPACK, array32(b"\x80")),
    ("1000 items of nested arrays", "/v1/txs", MSGPACK,
     b"\xdc\x03\xe8" + b"\x91" * (MIB8 - 3)),
    ("JSON nested 5,000 deep", "/v1/txs", JSON,
     b'{"envelopes": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("JSON nested 5,000 deep, one", "/v1/tx", JSON, b"[" * 5000 + b"]" * 5000),
    ("8 MiB JSON of empty lists", "/v1/txs", JSON,
     b'{"envelopes": [' + b"[]," * ((MIB8 - 20) // 3) + b"1]}"),
    ("8 MiB JSON of numbers", "/v1/txs", JSON,
     b'{"envelopes": [' + b"1," * ((MIB8 - 20) // 2) + b"1]}"),
    ("JSON of objects", "/v1/tx", JSON, b'{"envelope": {"a": {"b": {"c": {}}}}}'),
]


@pytest.mark.parametrize("name, path, headers, body", HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_a_hostile_body_is_a_quick_400(chain, name, path, headers, body):
    started = time.perf_counter()
    response = await chain.client.post(path, data=body, headers=headers)
    problem = await response.json(content_type=None)
    took = time.perf_counter() - started
    assert response.status == 400 and problem["code"] == "malformed", problem
    assert took < 1.0, f"{name}: {took:.2f} s"


async def test_the_bounds_leave_good_bodies_alone(chain):
    envelope = chain.envelope(chain.admin, "member.register",
                              {"key": bytes(32), "role": "citizen", "age_band": "21plus",
                               "area": "GMS"})
    text = base64.b64encode(envelope).decode()
    response = await chain.client.post("/v1/txs", json={"envelopes": [text] * 1000})
    items = (await response.json())["items"]
    assert response.status == 200 and len(items) == 1000
    assert "refused" not in {i["status"] for i in items}
    response = await chain.client.post("/v1/tx", json={"envelope": text})
    assert response.status in (200, 202)
