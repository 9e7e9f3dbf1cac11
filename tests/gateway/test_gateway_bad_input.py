"""Bad input of every sort gets a clear problem+json answer and changes nothing."""
from __future__ import annotations

import base64
import json

import msgpack
import pytest

from gateway_kit import new_key
from protocol import codec
from node.envelope import TX_TAG, make_body, seal

MSGPACK = {"Content-Type": "application/msgpack"}


def fingerprint(node) -> tuple:
    store = node.store
    return store.head(), store.state_acc(), store.last_position(), node.replica.pending_count


def raw_envelope(body: bytes, signature: bytes) -> bytes:
    return codec.pack([body, signature])


def cases(chain) -> list[tuple[str, str, dict, bytes, int, str]]:
    """(name, path, headers, body, status, code) for POST requests."""
    admin, chain_id = chain.admin, chain.chain
    good_args = {"key": new_key().public, "role": "citizen", "age_band": "21plus",
                 "area": "GMS"}
    body = make_body(chain_id, "member.register", admin.public, 7, good_args)
    other = new_key()
    return [
        ("undecodable", "/v1/tx", MSGPACK, b"\xc1\xff\x00", 400, "malformed"),
        ("empty", "/v1/tx", MSGPACK, b"", 400, "malformed"),
        ("trailing bytes", "/v1/tx", MSGPACK, seal(admin, body) + b"\x00", 400, "malformed"),
        ("bad signature", "/v1/tx", MSGPACK,
         raw_envelope(body, other.sign(TX_TAG + body)), 400, "bad_signature"),
        ("wrong chain", "/v1/tx", MSGPACK,
         seal(admin, make_body("other-chain", "member.register", admin.public, 7,
                               good_args)), 400, "wrong_chain"),
        ("float in body", "/v1/tx", MSGPACK,
         seal(admin, msgpack.packb({"v": 1, "chain": chain_id, "kind": "member.register",
                                    "signer": admin.public, "nonce": 1.5,
                                    "args": good_args})), 400, "malformed"),
        ("json not json", "/v1/tx", {"Content-Type": "application/json"}, b"{nope", 400,
         "malformed"),
        ("json without envelope", "/v1/tx", {"Content-Type": "application/json"},
         b'{"env": "AA=="}', 400, "malformed"),
        ("json envelope not base64", "/v1/tx", {"Content-Type": "application/json"},
         b'{"envelope": "***"}', 400, "malformed"),
        ("text/plain", "/v1/tx", {"Content-Type": "text/plain"}, b"hello", 415,
         "unsupported_media_type"),
        ("no content type", "/v1/tx", {}, b"", 415, "unsupported_media_type"),
        ("huge one", "/v1/tx", MSGPACK, b"\x00" * (64 * 1024 + 1), 413, "too_large"),
        ("huge batch", "/v1/txs", {"Content-Type": "application/json"},
         b'{"envelopes": ["' + b"A" * (8 * 1024 * 1024) + b'"]}', 413, "too_large"),
        ("batch of none", "/v1/txs", {"Content-Type": "application/json"},
         b'{"envelopes": []}', 400, "malformed"),
        ("batch too long", "/v1/txs", {"Content-Type": "application/json"},
         json.dumps({"envelopes": ["AA=="] * 1001}).encode(), 400, "malformed"),
        ("msgpack batch of none", "/v1/txs", MSGPACK, b"\x90", 400, "malformed"),
        ("msgpack batch not an array", "/v1/txs", MSGPACK, b"\xc4\x01A", 400, "malformed"),
        ("msgpack batch of text", "/v1/txs", MSGPACK, b"\x91\xa1A", 400, "malformed"),
        ("msgpack batch, trailing bytes", "/v1/txs", MSGPACK, b"\x91\xc4\x00\x00", 400,
         "malformed"),
        ("msgpack batch too long", "/v1/txs", MSGPACK, b"\xdc\x03\xe9" + b"\xc4\x00" * 1001,
         400, "malformed"),
        ("batch as text", "/v1/txs", {"Content-Type": "text/plain"}, b"[]", 415,
         "unsupported_media_type"),
        ("unknown parameter", "/v1/tx?wiat=true", MSGPACK, seal(admin, body), 400,
         "invalid_parameter"),
        ("bad timeout", "/v1/tx?wait=true&timeout=nan", MSGPACK, seal(admin, body), 400,
         "invalid_parameter"),
    ]


async def test_bad_submissions_get_a_problem_and_change_nothing(chain, node):
    await chain.member("citizen")
    before = fingerprint(node)
    for name, path, headers, body, status, code in cases(chain):
        response = await chain.client.post(path, data=body, headers=headers)
        problem = await response.json(content_type=None)
        assert response.status == status, (name, problem)
        assert response.headers["Content-Type"].startswith("application/problem+json"), name
        assert problem["code"] == code and problem["status"] == status, (name, problem)
        assert problem["title"] and problem["detail"].endswith("."), (name, problem)
    assert fingerprint(node) == before


async def test_chaincode_refusals_are_results_with_sentences_not_crashes(chain):
    admin = chain.admin
    unknown = await chain.tx(admin, "coin.print", {"amount": 5}, code="unknown_kind")
    wrong_type = await chain.tx(admin, "task.post", {"task": 5}, code="invalid_args")
    stranger = await chain.tx(new_key(), "task.claim", {"task": "x"}, code="unknown_member")
    for refused in (unknown, wrong_type, stranger):
        assert refused["status"] == "rejected" and refused["events"] == []
        assert refused["detail"] and refused["detail"][-1] == "."


@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/v1/nothing", 404, "not_found"),
    ("GET", "/v2/status", 404, "not_found"),
    ("DELETE", "/v1/status", 405, "method_not_allowed"),
    ("PUT", "/v1/tx", 405, "method_not_allowed"),
    ("GET", "/v1/tx", 405, "method_not_allowed"),
    ("GET", "/v1/status?verbose=1", 400, "invalid_parameter"),
    ("GET", "/v1/tasks?status=later", 400, "invalid_parameter"),
    ("GET", "/v1/tasks?limit=0", 400, "invalid_parameter"),
    ("GET", "/v1/tasks?limit=1001", 400, "invalid_parameter"),
    ("GET", "/v1/tasks?limit=ten", 400, "invalid_parameter"),
    ("GET", "/v1/tasks?area=%20", 400, "invalid_parameter"),
    ("GET", "/v1/tasks?limit=1&limit=2", 400, "invalid_parameter"),
    ("GET", "/v1/merchants?cursor=zz", 400, "invalid_parameter"),
    ("GET", "/v1/tasks/" + "x" * 65, 404, "not_found"),
    ("GET", "/v1/tx/XYZ", 404, "not_found"),
    ("GET", "/v1/blocks/-1", 401, "unauthenticated"),
    ("GET", "/v1/accounts/abc", 404, "not_found"),
    ("GET", "/v1/stats?cells=all", 400, "invalid_parameter"),
    ("GET", "/v1/constitution?organisation=cbs", 400, "invalid_parameter"),
    ("GET", "/v1/proposals?status=lapsed", 400, "invalid_parameter"),
    ("GET", "/v1/proposals?cursor=7", 400, "invalid_parameter"),
    ("GET", "/v1/proposals/XYZ", 400, "invalid_parameter"),
    ("GET", "/v1/proposals/" + "0" * 64, 404, "not_found"),
    ("POST", "/v1/proposals", 405, "method_not_allowed"),
])
async def test_unknown_paths_methods_and_parameters_are_clear_problems(
        chain, node, method, path, status, code):
    before = fingerprint(node)
    response = await chain.client.request(method, path)
    problem = await response.json(content_type=None)
    assert response.status == status, problem
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert problem["code"] == code and problem["detail"]
    if status == 405:
        assert response.headers["Allow"]
    assert fingerprint(node) == before


async def test_bad_paging_parameters_of_the_admins_reads_are_400(chain):
    for path, params in (("/v1/events", {"after": "-1"}), ("/v1/events", {"cursor": "a"}),
                         ("/v1/blocks", {"from": "1.5"}), ("/v1/payouts", {"status": "x"}),
                         ("/v1/events", {"account": "00"})):
        body = await chain.get(path, chain.admin, expect=400, **params)
        assert body["code"] == "invalid_parameter"
    assert (await chain.get("/v1/blocks/-1", chain.admin, expect=404))["code"] == "not_found"
    response = await chain.client.get("/v1/events/stream", headers={
        **chain.auth(chain.admin), "Last-Event-ID": "yesterday"})
    assert response.status == 400


async def test_a_json_envelope_is_accepted_like_the_raw_one(chain):
    envelope = chain.envelope(chain.admin, "member.register", {
        "key": new_key().public, "role": "merchant", "name": "De Kroon"})
    response = await chain.client.post("/v1/tx?wait=true", json={
        "envelope": base64.b64encode(envelope).decode()})
    assert response.status == 200 and (await response.json())["code"] == "ok"
