"""A Python client of the gateway's HTTP API (docs/api.md, docs/client.md).

It signs envelopes and read tokens with one key (anything with `public` and `sign`, as
node.keys.Keypair has) in the protocol's wire form (protocol/envelope.py,
protocol/token.py), submits one transaction or many (in chunks of at most 1,000, the
gateway's batch limit), waits for decisions, reads every list page by page, and follows
the event stream, resuming after a disconnect from the last position it saw
(`Last-Event-ID`), so a caller sees every event once, in order.

Every failure is a `ClientError` carrying the gateway's problem `code`, the HTTP
`status` and a plain `detail`; a gateway that cannot be reached is code `unreachable`
with status 0. A chaincode rejection is not an HTTP failure: `submit` answers it as the
result it is, and `send(..., check=True)` turns it into a ClientError with status 200.

Governance and recoveries have their own methods (`propose`, `approve`, `withdraw`,
`recover`, `cancel_recovery`, `complete_recovery`, `constitution`, `proposals`,
`proposal`). Where a parameter is a key (`account(key)`, `recover(old, new)`, ...) it may
be given as bytes or as hex; the args of `propose` go to the chain as given, so keys in
them are bytes, as in every transaction's args.

It loads no part of the server: neither the gateway nor the node nor the chaincode.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import AsyncIterator, Sequence

import aiohttp

from protocol import codec
from protocol.envelope import Signer, make_body, seal
from protocol.limits import MAX_BATCH
from protocol.token import make_token

WAIT_CONCURRENCY = 16           # waits on pending transactions in flight at once
TOKEN_RENEW_S = 60.0            # a token is good for five minutes; renew well before
STREAM_LINE_BYTES = 1 << 20     # one SSE line; events are far smaller
MAX_TOKENS = 64                 # read tokens kept, one per reading key
MAX_DATA_LINES = 64             # data lines of one event (the gateway writes one)
UNREACHABLE = "unreachable"
DAY_MS = 24 * 3600 * 1000
PROPOSAL_DAYS = 7               # a proposal's default time to gather its approvals


class ClientError(Exception):
    """A problem answered by the gateway (or no answer at all: code `unreachable`)."""

    def __init__(self, code: str, status: int, detail: str, info: dict | None = None,
                 tx_id: str | None = None):
        super().__init__(f"{code}: {detail}")
        self.code, self.status, self.detail = code, status, detail
        self.info, self.tx_id = info or {}, tx_id


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Client:
    """One gateway, optionally one signing key. Use as `async with Client(url, key) as c`.

    The chain id is read from /v1/status on first need, unless given."""

    def __init__(self, gateway: str, key: Signer | None = None, chain: str | None = None,
                 timeout_s: float = 30.0, session: aiohttp.ClientSession | None = None):
        self.gateway = gateway.rstrip("/")
        self.key = key
        self.chain = chain
        self.timeout_s = timeout_s
        self._session = session
        self._own_session = session is None
        self._tokens: dict[bytes, tuple[str, float]] = {}   # key -> (token, made at)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._own_session = True
        return self._session

    # ---- signing ----------------------------------------------------------------------

    def _signer(self, signer: Signer | None) -> Signer:
        signer = signer or self.key
        if signer is None:
            raise ClientError("no_key", 0, "This needs a key to sign with.")
        return signer

    async def chain_id(self) -> str:
        if self.chain is None:
            self.chain = (await self.status())["chain"]
        return self.chain

    async def sign(self, kind: str, args: dict, signer: Signer | None = None,
                   nonce: int | None = None) -> bytes:
        """A signed envelope of this chain (the nonce is fresh and random unless given)."""
        signer = self._signer(signer)
        chain = await self.chain_id()
        if nonce is None:
            nonce = int.from_bytes(os.urandom(8), "big")
        return seal(signer, make_body(chain, kind, signer.public, nonce, args))

    async def token(self, signer: Signer | None = None, ms: int | None = None) -> str:
        """A read token of `signer` (default: the client's key) made now and reused for a
        minute, so the gateway checks its signature once; or made at time `ms`."""
        chain = await self.chain_id()
        signer = self._signer(signer)
        if ms is not None:
            return make_token(signer, chain, ms)
        made, at = self._tokens.get(signer.public, ("", 0.0))
        if not made or time.monotonic() - at > TOKEN_RENEW_S:
            made = make_token(signer, chain, now_ms())
            if len(self._tokens) >= MAX_TOKENS:
                self._tokens.clear()       # a client reads as a handful of keys at most
            self._tokens[signer.public] = (made, time.monotonic())
        return made

    async def _auth(self, reader: Signer | None) -> dict:
        if reader is None and self.key is None:
            return {}
        return {"Authorization": f"Stadsmunt {await self.token(reader)}"}

    # ---- HTTP -------------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, params: dict | None = None,
                       json_body=None, data: bytes | None = None, headers: dict | None = None,
                       timeout_s: float | None = None, ok=(200,)) -> tuple[int, dict]:
        url = self.gateway + path
        params = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        try:
            async with self.session.request(method, url, params=params, json=json_body,
                                            data=data, headers=headers,
                                            timeout=timeout) as response:
                text = await response.text()
                status = response.status
        except asyncio.TimeoutError:
            raise ClientError(UNREACHABLE, 0, f"{self.gateway} did not answer in time.") \
                from None
        except aiohttp.ClientError as error:
            raise ClientError(UNREACHABLE, 0, f"cannot reach {self.gateway}: {error}") \
                from None
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {}
        if status not in ok:
            if not isinstance(body, dict):
                body = {}
            raise ClientError(body.get("code") or f"http_{status}", status,
                              body.get("detail") or text[:200] or f"HTTP {status}",
                              tx_id=body.get("tx_id"))
        return status, body

    async def get(self, path: str, reader: Signer | None = None, **params) -> dict:
        """GET a path of the API, with the key's read token when the client has a key."""
        return (await self._request("GET", path, params=params,
                                    headers=await self._auth(reader)))[1]

    async def pages(self, path: str, reader: Signer | None = None, limit: int = 1000,
                    **params) -> AsyncIterator[dict]:
        """Every item of a paged list, following `next` until it is null."""
        cursor = None
        while True:
            extra = {"cursor": cursor} if cursor is not None else {}
            page = await self.get(path, reader, limit=limit, **params, **extra)
            for item in page["items"]:
                yield item
            cursor = page["next"]
            if cursor is None:
                return

    async def all(self, path: str, reader: Signer | None = None, **params) -> list[dict]:
        return [item async for item in self.pages(path, reader, **params)]

    # ---- submitting -------------------------------------------------------------------

    async def submit(self, envelope: bytes, wait: bool = True, timeout_s: float = 10.0) -> dict:
        """POST /v1/tx: the decided result with `wait`, else (or if the wait ran out)
        `{"tx_id", "status": "pending"}`. Door refusals raise ClientError (400)."""
        path = f"/v1/tx?wait=true&timeout={timeout_s:g}" if wait else "/v1/tx"
        return (await self._request("POST", path, data=envelope,
                                    headers={"Content-Type": "application/msgpack"},
                                    timeout_s=timeout_s + self.timeout_s,
                                    ok=(200, 202)))[1]

    async def submit_many(self, envelopes: Sequence[bytes], wait: bool = True,
                          timeout_s: float = 30.0) -> list[dict]:
        """One answer per envelope, in order: POST /v1/txs in chunks of <= 1,000, then,
        with `wait`, each pending one is waited for (a resubmission of a known envelope
        executes nothing; it only waits). Door refusals come back as items with
        status `refused`, not as exceptions, so one bad row does not hide the others."""
        answers: list[dict] = []
        for start in range(0, len(envelopes), MAX_BATCH):
            chunk = envelopes[start:start + MAX_BATCH]
            items = (await self._request(
                "POST", "/v1/txs", data=codec.pack(list(chunk)),
                headers={"Content-Type": "application/msgpack"}))[1]["items"]
            assert len(items) == len(chunk), "the gateway answers one item per envelope"
            answers.extend(items)
        if wait:
            await self._wait_all(envelopes, answers, timeout_s)
        return answers

    async def _wait_all(self, envelopes: Sequence[bytes], answers: list[dict],
                        timeout_s: float) -> None:
        gate = asyncio.Semaphore(WAIT_CONCURRENCY)
        deadline = time.monotonic() + timeout_s

        async def settle(index: int) -> None:
            async with gate:
                while answers[index]["status"] in ("pending", "overloaded"):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    try:
                        found = await self.submit(envelopes[index], True, min(left, 60.0))
                    except ClientError as error:
                        if error.code not in ("overloaded", "over_share"):
                            raise
                        # the gateway asked us to come back: after Retry-After, at
                        # least 1 s for either (a key's share refills at >= 1 a second)
                        await asyncio.sleep(1.0)
                        continue
                    answers[index] = found
        await asyncio.gather(*(settle(i) for i, a in enumerate(answers)
                               if a["status"] in ("pending", "overloaded")))

    async def send(self, kind: str, args: dict, signer: Signer | None = None,
                   check: bool = True, timeout_s: float = 10.0) -> dict:
        """Sign, submit and wait: the decided result. With `check`, a rejection (or a
        transaction still pending after the wait) raises ClientError."""
        envelope = await self.sign(kind, args, signer)
        result = await self.submit(envelope, True, timeout_s)
        if check and result.get("status") != "committed":
            if result.get("status") == "pending":
                raise ClientError("pending", 202, "Not decided yet; ask again later with "
                                  "its id.", tx_id=result.get("tx_id"))
            raise ClientError(result["code"], 200, result["detail"], result.get("info"),
                              result["tx_id"])
        return result

    # ---- reading ----------------------------------------------------------------------

    async def status(self) -> dict:
        return (await self._request("GET", "/v1/status"))[1]

    async def tx(self, tx_id: str) -> dict:
        return await self.get(f"/v1/tx/{tx_id}")

    # `reader`: whose read token to send, when not the client's key (an account's own
    # key may read that account)
    async def account(self, key: bytes | str, reader: Signer | None = None) -> dict:
        return await self.get(f"/v1/accounts/{_hex(key)}", reader)

    async def history(self, key: bytes | str, reader: Signer | None = None) -> list[dict]:
        return await self.all(f"/v1/accounts/{_hex(key)}/history", reader)

    async def statement(self, key: bytes | str, year: int,
                        reader: Signer | None = None) -> dict:
        return await self.get(f"/v1/accounts/{_hex(key)}/statement", reader, year=year)

    async def tasks(self, status: str | None = None, area: str | None = None) -> list[dict]:
        return await self.all("/v1/tasks", status=status, area=area)

    async def task(self, task_id: str) -> dict:
        return await self.get(f"/v1/tasks/{task_id}")

    async def merchants(self) -> list[dict]:
        return await self.all("/v1/merchants")

    async def payouts(self, status: str | None = None) -> list[dict]:
        return await self.all("/v1/payouts", status=status)

    async def blocks(self, start: int = 1) -> list[dict]:
        return await self.all("/v1/blocks", limit=100, **{"from": start})

    async def events(self, after: int = 0, kind: str | None = None,
                     account: bytes | str | None = None) -> list[dict]:
        return await self.all("/v1/events", after=after, kind=kind,
                              account=None if account is None else _hex(account))

    async def stats(self) -> dict:
        return (await self._request("GET", "/v1/stats"))[1]

    # ---- governance and recoveries ----------------------------------------------------
    # Writes answer the decided result, as `send` does (with `check`, a rejection
    # raises); a proposal's id is the `tx_id` of its gov.propose.

    async def propose(self, action: str, args: dict, expires_ms: int | None = None,
                      reason: str | None = None, signer: Signer | None = None,
                      check: bool = True) -> dict:
        """gov.propose by a steward; `expires_ms` defaults to seven days from now. `args`
        are the action's as the chain has them (keys as bytes)."""
        payload = {"action": action, "args": args,
                   "expires": expires_ms if expires_ms is not None
                   else now_ms() + PROPOSAL_DAYS * DAY_MS}
        if reason is not None:
            payload["reason"] = reason
        return await self.send("gov.propose", payload, signer, check)

    async def approve(self, proposal_id: str, signer: Signer | None = None,
                      check: bool = True) -> dict:
        return await self.send("gov.approve", {"proposal": proposal_id.lower()}, signer,
                               check)

    async def withdraw(self, proposal_id: str, signer: Signer | None = None,
                       check: bool = True) -> dict:
        return await self.send("gov.withdraw", {"proposal": proposal_id.lower()}, signer,
                               check)

    async def recover(self, old: bytes | str, new: bytes | str,
                      signer: Signer | None = None, check: bool = True) -> dict:
        """member.recover signed directly: by an admin it opens a delayed recovery."""
        return await self.send("member.recover", {"old": _key(old), "new": _key(new)},
                               signer, check)

    async def cancel_recovery(self, old: bytes | str, signer: Signer | None = None,
                              check: bool = True) -> dict:
        return await self.send("recovery.cancel", {"old": _key(old)}, signer, check)

    async def complete_recovery(self, old: bytes | str, signer: Signer | None = None,
                                check: bool = True) -> dict:
        return await self.send("recovery.complete", {"old": _key(old)}, signer, check)

    async def constitution(self) -> dict:
        return await self.get("/v1/constitution")

    async def proposals(self, status: str | None = None) -> list[dict]:
        return await self.all("/v1/proposals", status=status)

    async def proposal(self, proposal_id: str) -> dict:
        return await self.get(f"/v1/proposals/{proposal_id.lower()}")

    # ---- the live stream --------------------------------------------------------------

    async def stream(self, after: int = 0, kind: str | None = None,
                     account: bytes | str | None = None, max_reconnects: int | None = None,
                     retry_s: float = 1.0) -> AsyncIterator[dict]:
        """Events after position `after`, then live, forever (or until the caller stops).

        After a disconnect it reconnects with `Last-Event-ID` set to the last position
        it yielded, so nothing is missed or repeated; it gives up with ClientError after
        `max_reconnects` failed attempts in a row (None: never)."""
        last, failures = after, 0
        params = {"kind": kind, "account": None if account is None else _hex(account)}
        while True:
            try:
                async for position, event in self._stream_once(last, params):
                    failures = 0
                    assert position > last, "the stream goes forward without repeats"
                    last = position
                    yield event
                raise aiohttp.ClientPayloadError("the stream ended")
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as error:
                failures += 1
                if max_reconnects is not None and failures > max_reconnects:
                    raise ClientError(UNREACHABLE, 0, f"the event stream of {self.gateway} "
                                      f"broke off and did not come back: {error}") from None
                await asyncio.sleep(retry_s)

    async def _stream_once(self, last: int, params: dict):
        headers = await self._auth(None)
        headers["Last-Event-ID"] = str(last)
        headers["Accept"] = "text/event-stream"
        query = {k: v for k, v in params.items() if v is not None}
        # no total timeout: a live stream is long; a quiet one still sends `: idle`
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with self.session.get(self.gateway + "/v1/events/stream", params=query,
                                    headers=headers, timeout=timeout) as response:
            if response.status != 200:
                body = {}
                try:
                    body = json.loads(await response.text())
                except ValueError:
                    pass
                if response.status >= 500:   # overloaded or failing: worth coming back
                    raise aiohttp.ClientResponseError(response.request_info, (),
                                                      status=response.status)
                raise ClientError(body.get("code", f"http_{response.status}"),
                                  response.status, body.get("detail", "stream refused"))
            parser = EventParser()
            while True:
                try:
                    line = await response.content.readline()
                except ValueError:      # aiohttp's refusal of an over-long line
                    raise aiohttp.ClientPayloadError("an event line is too long") from None
                if not line:
                    return
                if len(line) > STREAM_LINE_BYTES:
                    raise aiohttp.ClientPayloadError("an event line is too long")
                try:
                    found = parser.feed(line.decode("utf-8"))
                except ValueError as error:     # not UTF-8, a bad id, bad JSON
                    raise ClientError("bad_stream", response.status, f"the event stream "
                                      f"of {self.gateway} sent something unreadable: "
                                      f"{error}") from None
                if found is not None:
                    yield found


class EventParser:
    """Server-Sent Events, one line at a time, as the gateway writes them: `id:` is the
    event's position, `data:` lines are joined with newlines into its JSON, a blank line
    ends the event; comments (`: idle`) and `retry:` carry nothing for us."""

    def __init__(self):
        self.position: int | None = None
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[int, dict] | None:
        """(position, event) when `line` completes one, else None."""
        text = line.rstrip("\r\n")
        if text == "":
            position, data = self.position, self.data
            self.position, self.data = None, []
            if position is not None and data:
                return position, json.loads("\n".join(data))
        elif text.startswith("id:"):
            self.position = int(text[3:].strip())
        elif text.startswith("data:"):
            if len(self.data) >= MAX_DATA_LINES:
                raise ValueError("an event of too many data lines")
            self.data.append(text[5:].removeprefix(" "))
        return None


def _hex(key: bytes | str) -> str:
    return key.hex() if isinstance(key, bytes) else key


def _key(key: bytes | str) -> bytes:
    """A key as bytes; hex text is read as such (bad hex raises ValueError)."""
    return key if isinstance(key, bytes) else bytes.fromhex(key)


def _param(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

