"""Live event streams: a limit per reading key (and per address), and a stream that ends
with an `expired` event when its token expires or its reader loses the right to read."""
from __future__ import annotations

import asyncio
import json

from gateway.auth import TOKEN_LIFETIME_MS
from gateway.streams import PER_KEY, StreamSlots
from gateway_kit import new_key, now_ms


async def _expired_event(response, within_s: float) -> dict:
    """Read the stream until its `expired` event; it must then end."""
    async def read() -> dict:
        event = None
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                return event
            if line.startswith("event: expired"):
                event = {}
            elif event is not None and line.startswith("data: "):
                event = json.loads(line[len("data: "):])
    found = await asyncio.wait_for(read(), within_s)
    assert found is not None, "the stream ended without an expired event"
    return found


async def test_one_key_holds_at_most_its_share_of_streams(chain):
    auditor = await chain.member("auditor")
    opened = [await chain.client.get("/v1/events/stream", headers=chain.auth(auditor))
              for _ in range(PER_KEY)]
    assert all(r.status == 200 for r in opened)
    refused = await chain.client.get("/v1/events/stream", headers=chain.auth(auditor))
    body = await refused.json()
    assert refused.status == 429 and body["code"] == "too_many_streams"
    assert refused.headers["Retry-After"] == "5"
    # another key still gets one; and one closed gives its slot back
    other = await chain.client.get("/v1/events/stream", headers=chain.auth(chain.admin))
    assert other.status == 200
    opened[0].close()
    for _ in range(100):
        again = await chain.client.get("/v1/events/stream", headers=chain.auth(auditor))
        if again.status == 200:
            break
        await asyncio.sleep(0.05)       # the server notices the closed connection
    assert again.status == 200
    for response in opened[1:] + [other, again]:
        response.close()


async def test_a_stream_ends_with_an_expired_event_when_its_token_expires(chain):
    # a token with two seconds of validity left
    issued = now_ms() - TOKEN_LIFETIME_MS + 2_000
    stream = await chain.client.get("/v1/events/stream", headers=chain.auth(chain.admin, issued))
    assert stream.status == 200
    event = await _expired_event(stream, within_s=10)
    assert "expired" in event["reason"]


async def test_a_stream_ends_when_its_reader_is_revoked(chain):
    auditor = await chain.member("auditor")
    stream = await chain.client.get("/v1/events/stream", headers=chain.auth(auditor))
    assert stream.status == 200
    await chain.govern("member.revoke", {"key": auditor.public})
    event = await _expired_event(stream, within_s=10)
    assert event["reason"]


def test_slots_count_per_key_per_address_and_in_total():
    slots = StreamSlots(total=3, per_key=2, per_address=2)
    a, b, c = new_key().public, new_key().public, new_key().public
    slots.take(a, "10.0.0.1")
    slots.take(a, "10.0.0.2")
    assert slots.refusal(a, "10.0.0.3") == "key"
    assert slots.refusal(b, "10.0.0.1") is None
    slots.take(b, "10.0.0.1")
    assert slots.refusal(c, "10.0.0.9") == "total"
    slots.give_back(a, "10.0.0.2")
    assert slots.refusal(c, "10.0.0.1") == "address"
    assert slots.refusal(c, "10.0.0.9") is None
