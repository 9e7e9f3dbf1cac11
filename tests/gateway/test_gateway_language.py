"""The sentences of the transaction endpoints in the reader's language: Dutch for an
Accept-Language that prefers nl, English otherwise, with Content-Language on the answer.
The code and info are the result's own, the same in every language."""
from __future__ import annotations

import base64

import pytest

from chaincode.describe import TEXTS
from gateway.problems import choose_language
from gateway_kit import new_key

DUTCH = {"Accept-Language": "nl"}


@pytest.mark.parametrize("header,language", [
    (None, "en"), ("", "en"), ("nl", "nl"), ("nl-NL", "nl"), ("NL-nl", "nl"),
    ("nl-BE", "nl"), ("en", "en"), ("en-GB", "en"), ("de", "en"), ("*", "en"),
    ("fr, nl;q=0.5", "nl"), ("nl;q=0.4, en;q=0.9", "en"), ("en;q=0.4, nl;q=0.9", "nl"),
    ("nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7", "nl"), ("en, nl", "en"), ("nl, en", "nl"),
    ("nl;q=0", "en"), ("nl;q=abc", "en"), ("nl;q=2", "en"), ("nl;q=nan", "en"),
    ("de;q=1, nl ; q=0.3", "nl"), (",,;;", "en"),
])
def test_the_language_is_chosen_from_accept_language(header, language):
    assert choose_language(header) == language


async def test_a_rejected_transaction_is_described_in_dutch_or_english(chain):
    envelope = chain.envelope(chain.admin, "task.post", {
        "task": "t-lang", "title": "Litter", "area": "GMS", "domain": "public-space",
        "reward": 500, "minutes": "sixty", "slots": 2, "deadline": 2**40})
    response = await chain.client.post("/v1/tx?wait=true&timeout=20", data=envelope,
                                       headers={"Content-Type": "application/msgpack",
                                                **DUTCH})
    dutch = await response.json()
    assert response.status == 200 and response.headers["Content-Language"] == "nl"
    assert dutch["status"] == "rejected" and dutch["code"] == "invalid_args"
    assert dutch["info"] == {"argument": "minutes", "problem": "type"}
    assert dutch["detail"].startswith("minutes: moet een heel aantal minuten")

    path = f"/v1/tx/{dutch['tx_id']}"
    response = await chain.client.get(path, headers=chain.auth(chain.admin))
    english = await response.json()
    assert response.headers["Content-Language"] == "en"
    assert english["detail"].startswith("minutes: must be a whole number of minutes")
    assert {k: v for k, v in english.items() if k != "detail"} == \
        {k: v for k, v in dutch.items() if k != "detail"}

    response = await chain.client.get(path, headers={"Accept-Language": "de, nl;q=0.5"})
    assert response.headers["Content-Language"] == "nl"
    assert (await response.json())["detail"] == dutch["detail"]
    response = await chain.client.get(path, headers={"Accept-Language": "fr"})
    assert (await response.json())["detail"] == english["detail"]

    # the batch endpoint describes a known transaction in the same words
    response = await chain.client.post("/v1/txs", json={
        "envelopes": [base64.b64encode(envelope).decode()]}, headers=DUTCH)
    (item,) = (await response.json())["items"]
    assert response.headers["Content-Language"] == "nl"
    assert (item["code"], item["detail"]) == ("invalid_args", dutch["detail"])


async def test_a_refusal_of_the_chaincode_in_dutch(chain):
    citizen = await chain.member("citizen")
    shop = await chain.member("merchant")
    envelope = chain.envelope(citizen, "coin.spend", {"to": shop.public, "amount": 100})
    response = await chain.client.post("/v1/tx?wait=true&timeout=20", data=envelope,
                                       headers={"Content-Type": "application/msgpack",
                                                "Accept-Language": "nl-NL"})
    body = await response.json()
    assert (body["code"], body["info"]) == ("insufficient_funds", {})
    assert body["detail"] == "U heeft niet genoeg munten voor deze betaling."
    assert response.headers["Content-Language"] == "nl"


async def test_admission_and_door_refusals_follow_the_language(chain):
    stranger = new_key()
    envelope = chain.envelope(stranger, "task.claim", {"task": "x"})
    response = await chain.client.post("/v1/tx", data=envelope, headers={
        "Content-Type": "application/msgpack", **DUTCH})
    body = await response.json()
    assert body["code"] == "unknown_member"
    assert body["detail"] == TEXTS["nl"]["codes"]["unknown_member"]
    assert response.headers["Content-Language"] == "nl"

    response = await chain.client.post("/v1/tx", data=b"\xc1", headers={
        "Content-Type": "application/msgpack", **DUTCH})
    problem = await response.json(content_type=None)
    assert response.status == 400 and problem["code"] == "malformed"
    assert problem["detail"].startswith(TEXTS["nl"]["codes"]["malformed"][:-1])
    assert response.headers["Content-Language"] == "nl"
    response = await chain.client.post("/v1/tx", data=b"\xc1", headers={
        "Content-Type": "application/msgpack"})
    problem = await response.json(content_type=None)
    assert problem["detail"].startswith(TEXTS["en"]["codes"]["malformed"][:-1])
    assert response.headers["Content-Language"] == "en"
