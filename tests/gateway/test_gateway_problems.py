"""A bug of ours answers 500 as a problem, logged, never a traceback to the client; a
failed write does not claim that nothing was changed (the node may have taken it)."""
from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.problems import problems


async def _broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def _client() -> TestClient:
    app = web.Application(middlewares=[problems])
    app.router.add_route("GET", "/read", _broken)
    app.router.add_route("POST", "/write", _broken)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_failed_read_is_a_500_problem_without_a_traceback():
    client = await _client()
    try:
        response = await client.get("/read")
        body = json.loads(await response.text())
        assert response.status == 500 and body["code"] == "internal"
        assert "Traceback" not in body["detail"] and "a bug" not in body["detail"]
    finally:
        await client.close()


async def test_a_failed_write_says_to_look_the_transaction_up_not_that_nothing_changed():
    client = await _client()
    try:
        response = await client.post("/write", data=b"x")
        body = json.loads(await response.text())
        assert response.status == 500 and body["code"] == "internal"
        assert "nothing was changed" not in body["detail"]
        assert "GET /v1/tx/" in body["detail"]
    finally:
        await client.close()
