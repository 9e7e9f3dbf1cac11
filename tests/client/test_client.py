"""The Python client against a real validator: signing, batches, waits, errors, paging,
read tokens, and the event stream's resume after a real disconnect (a TCP proxy that the
test cuts)."""
from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from hypothesis import given, settings, strategies as hs

from client import MAX_BATCH, Client, ClientError, EventParser, tx_id_of_envelope
from node.envelope import open_envelope
from node.keys import Keypair

DAY_MS = 24 * 3600 * 1000


def new_key() -> Keypair:
    return Keypair.generate()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def citizen_args(key: Keypair, band: str = "21plus") -> dict:
    return {"key": key.public, "role": "citizen", "age_band": band, "area": "GMS"}


def task_args(task: str, reward: int = 500, minutes: int = 60) -> dict:
    return {"task": task, "title": f"Task {task}", "area": "GMS", "domain": "care",
            "reward": reward, "minutes": minutes, "slots": 5, "deadline": now_ms() + DAY_MS}


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


# ---- signing, without a network -------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seed=hs.binary(min_size=32, max_size=32), nonce=hs.integers(0, 2**64 - 1),
       task=hs.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True))
async def test_every_signed_envelope_opens_at_the_door_with_the_id_the_client_names(
        seed, nonce, task):
    signer = Keypair.from_seed(seed)
    client = Client("http://127.0.0.1:1", signer, chain="heerlen-test")
    envelope = await client.sign("task.claim", {"task": task}, nonce=nonce)
    opened = open_envelope(envelope, "heerlen-test")
    assert opened.tx.tx_id == tx_id_of_envelope(envelope)
    assert opened.tx.signer == signer.public and opened.tx.args == {"task": task}


async def test_a_fresh_nonce_makes_a_fresh_transaction_id():
    client = Client("http://127.0.0.1:1", new_key(), chain="heerlen-test")
    ids = {tx_id_of_envelope(await client.sign("task.claim", {"task": "t"}))
           for _ in range(50)}
    assert len(ids) == 50


JSONISH = hs.recursive(hs.none() | hs.booleans() | hs.integers() | hs.text(max_size=20),
                       lambda inner: hs.lists(inner, max_size=3)
                       | hs.dictionaries(hs.text(max_size=8), inner, max_size=3),
                       max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(events=hs.lists(hs.dictionaries(hs.text(max_size=10), JSONISH, max_size=4),
                       max_size=12),
       noise=hs.lists(hs.sampled_from([": idle", "retry: 1000", ":"]), max_size=12),
       crlf=hs.booleans(), first=hs.integers(1, 10**6))
def test_the_event_parser_gives_each_event_once_in_order_whatever_comments_lie_between(
        events, noise, crlf, first):
    """The lines a gateway writes, with idle comments and retry lines anywhere between
    events, parse back to exactly the events with their positions."""
    end = "\r\n" if crlf else "\n"
    lines = []
    for offset, event in enumerate(events):
        if offset < len(noise):
            lines += [noise[offset], ""]
        lines += [f"id: {first + offset}", f"data: {json.dumps(event)}", ""]
    parser = EventParser()
    found = [got for line in lines if (got := parser.feed(line + end)) is not None]
    assert found == [(first + i, e) for i, e in enumerate(events)]


# ---- submitting -----------------------------------------------------------------------

async def test_send_commits_and_a_rejection_raises_with_its_code_status_and_detail(net):
    async with Client(net.url, net.admin) as client:
        task = unique("walk")
        result = await client.send("task.post", task_args(task))
        assert result["status"] == "committed" and result["events"][0]["kind"] == "task.posted"
        with pytest.raises(ClientError) as caught:
            await client.send("task.post", task_args(task))
        assert (caught.value.code, caught.value.status) == ("exists", 200)
        assert caught.value.detail.startswith("That already exists")
        assert caught.value.tx_id is not None
        unchecked = await client.send("task.post", task_args(task), check=False)
        assert unchecked["status"] == "rejected" and unchecked["code"] == "exists"


async def test_submit_many_sends_more_than_one_batch_and_answers_in_order(net):
    async with Client(net.url, net.admin) as client:
        envelopes = [await client.sign("member.register", citizen_args(new_key()))
                     for _ in range(MAX_BATCH + 5)]
        answers = await client.submit_many(envelopes)
    assert [a["tx_id"] for a in answers] == [tx_id_of_envelope(e) for e in envelopes]
    assert {a["status"] for a in answers} == {"committed"}


async def test_a_door_refusal_in_a_batch_is_its_item_and_the_others_still_commit(net):
    async with Client(net.url, net.admin) as client:
        good = [await client.sign("member.register", citizen_args(new_key()))
                for _ in range(3)]
        forged = bytearray(good[1])
        forged[-1] ^= 1                    # the signature's last byte
        answers = await client.submit_many([good[0], bytes(forged), good[2]])
        assert [a["status"] for a in answers] == ["committed", "refused", "committed"]
        assert answers[1]["code"] == "bad_signature"
        with pytest.raises(ClientError) as caught:
            await client.submit(bytes(forged))
        assert (caught.value.code, caught.value.status) == ("bad_signature", 400)


async def test_resubmitting_a_known_envelope_answers_its_result_and_executes_nothing(net):
    async with Client(net.url, net.admin) as client:
        envelope = await client.sign("member.register", citizen_args(new_key()))
        first = await client.submit(envelope)
        again = await client.submit(envelope)
        assert first["status"] == again["status"] == "committed"
        assert first["height"] == again["height"]


async def test_an_unreachable_gateway_is_code_unreachable_with_status_0():
    with socket_closed() as url:
        async with Client(url, new_key(), chain="heerlen-test", timeout_s=2) as client:
            with pytest.raises(ClientError) as caught:
                await client.status()
    assert (caught.value.code, caught.value.status) == ("unreachable", 0)


class socket_closed:
    """A URL on which nothing listens (a port just bound and released)."""

    def __enter__(self) -> str:
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}"

    def __exit__(self, *_exc) -> None:
        return None


# ---- reading --------------------------------------------------------------------------

async def test_an_account_reads_with_its_own_token_and_not_with_another_citizens(net):
    anna, bram = new_key(), new_key()
    async with Client(net.url, net.admin) as staff:
        await staff.submit_many([await staff.sign("member.register", citizen_args(k))
                                 for k in (anna, bram)])
        async with Client(net.url, anna, chain=net.chain) as app:
            mine = await app.account(anna.public)
            assert mine["key"] == anna.public.hex() and mine["role"] == "citizen"
            assert mine["earnings"]["month"]["earned"] == 0
            with pytest.raises(ClientError) as caught:
                await app.account(bram.public)
            assert (caught.value.code, caught.value.status) == ("forbidden", 403)
        async with Client(net.url, None, chain=net.chain) as nobody:
            with pytest.raises(ClientError) as caught:
                await nobody.account(anna.public)
            assert caught.value.status == 401
            # the account's own key may read it through any client, as `reader`
            assert (await nobody.account(anna.public, anna))["key"] == anna.public.hex()


async def test_pages_walk_every_item_once_whatever_the_page_size(net):
    area = unique("area")
    async with Client(net.url, net.admin) as client:
        posted = [unique("page") for _ in range(7)]
        await client.submit_many([await client.sign("task.post", dict(task_args(t),
                                                                       area=area))
                                  for t in posted])
        for size in (1, 2, 3, 1000):
            found = [t["task"] async for t in client.pages("/v1/tasks", limit=size,
                                                              area=area)]
            assert sorted(found) == sorted(posted), size
        assert sorted(t["task"] for t in await client.tasks(area=area)) == sorted(posted)


async def test_history_statement_blocks_and_stats_follow_one_citizens_earning(net):
    citizen, task = new_key(), unique("earn")
    async with Client(net.url, net.admin) as staff:
        await staff.send("member.register", citizen_args(citizen))
        await staff.send("task.post", task_args(task, reward=450, minutes=60))
        await staff.send("task.claim", {"task": task}, citizen)
        await staff.send("task.submit", {"task": task, "proof": bytes(32)}, citizen)
        before = await staff.stats()
        approved = await staff.send("task.approve", {"task": task,
                                                     "citizen": citizen.public})
        after = await staff.stats()
        history = await staff.history(citizen.public, citizen)
        year = int((await staff.account(citizen.public))["earnings"]["year"]["period"])
        statement = await staff.statement(citizen.public, year)
        blocks = await staff.blocks(approved["height"])
    assert [e["kind"] for e in history] == ["member.registered", "task.claimed",
                                            "task.submitted", "task.approved"]
    assert statement["total"] == 450 and len(statement["months"]) == 12
    assert after["minted"] - before["minted"] == 450
    assert blocks[0]["height"] == approved["height"]
    assert approved["tx_id"] in [r["tx_id"] for r in blocks[0]["results"]]


async def test_a_rejected_claim_carries_the_cap_info_and_the_sentence_for_the_citizen(net):
    young = new_key()
    async with Client(net.url, net.admin) as staff:
        await staff.send("member.register", citizen_args(young, "under21"))
        task = unique("crew")
        await staff.send("task.post", task_args(task, reward=500, minutes=60))
        result = await staff.send("task.claim", {"task": task}, young, check=False)
    assert result["code"] == "hourly_rate_exceeded"
    assert result["info"]["band"] == "under21"
    assert "people under 21" in result["detail"]


# ---- the event stream -----------------------------------------------------------------

class Proxy:
    """A TCP relay in front of the gateway that the test can cut: `cut()` closes every
    connection and refuses new ones until `reopen()`."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.open = True
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer) -> None:
        if not self.open:
            writer.close()
            return
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    def reopen(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        self.server.close()
        await self.server.wait_closed()


async def _until(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_the_stream_resumes_after_a_disconnect_without_gaps_or_repeats(net):
    citizen = new_key()
    tasks = [unique("stream") for _ in range(6)]
    proxy = Proxy(int(net.url.rpartition(":")[2]))
    via = await proxy.start()
    seen: list[dict] = []
    async with Client(net.url, net.admin) as staff, Client(via, net.admin) as watcher:
        await staff.send("member.register", citizen_args(citizen))
        await staff.submit_many([await staff.sign("task.post", task_args(t)) for t in tasks])

        async def follow():
            async for event in watcher.stream(account=citizen.public, retry_s=0.05):
                seen.append(event)
        following = asyncio.create_task(follow())
        try:
            for task in tasks[:3]:
                await staff.send("task.claim", {"task": task}, citizen)
            await _until(lambda: len(seen) == 4, "the registration and three claims")
            proxy.cut()                       # the stream breaks; reconnects are refused
            for task in tasks[3:]:            # events happen while it is away
                await staff.send("task.claim", {"task": task}, citizen)
            proxy.reopen()
            await _until(lambda: len(seen) == 7, "the three claims made while away")
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            await proxy.close()
        logged = await staff.events(account=citizen.public)
    assert proxy.connections >= 2, "the stream did reconnect"
    assert [e["position"] for e in seen] == [e["position"] for e in logged]
    assert seen == logged
    assert [e["kind"] for e in seen] == ["member.registered"] + ["task.claimed"] * 6


async def test_the_stream_gives_up_after_its_reconnects_with_unreachable():
    with socket_closed() as url:
        async with Client(url, new_key(), chain="heerlen-test") as client:
            with pytest.raises(ClientError) as caught:
                async for _event in client.stream(max_reconnects=2, retry_s=0.01):
                    pass
    assert caught.value.code == "unreachable"

