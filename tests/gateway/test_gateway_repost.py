"""Re-posting someone else's committed envelope answers its status, not its events:
those show only to a reader who may see them (as GET /v1/tx/{id})."""
from __future__ import annotations

from gateway_kit import new_key


async def test_a_copy_of_a_spend_posted_anonymously_shows_no_memo(chain):
    citizen, shop = await chain.member("citizen"), await chain.member("merchant")
    await chain.task("t")
    await chain.earn(citizen, "t")
    envelope = chain.envelope(citizen, "coin.spend",
                              {"to": shop.public, "amount": 100, "memo": "pharmacy"})
    first = await chain.send(envelope)
    assert first["code"] == "ok" and first["events"][0]["memo"] == "pharmacy"
    headers = {"Content-Type": "application/msgpack"}
    copy = await chain.client.post("/v1/tx?wait=true", data=envelope, headers=headers)
    body = await copy.json()
    assert copy.status == 200 and body["code"] == "ok" and body["status"] == "committed"
    assert body["events"] is None
    stranger = new_key()
    copy = await chain.client.post("/v1/tx?wait=true", data=envelope,
                                   headers=dict(headers, **chain.auth(stranger)))
    assert (await copy.json())["events"] is None
    for reader in (citizen, shop, chain.admin):
        copy = await chain.client.post("/v1/tx?wait=true", data=envelope,
                                       headers=dict(headers, **chain.auth(reader)))
        assert (await copy.json())["events"][0]["memo"] == "pharmacy"
