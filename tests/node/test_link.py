"""The node side of the local link (node/link.py) with a real validator of a one-validator
network and a raw Unix socket as the gateway: what a gateway may send is answered, and
the first frame that is wrong ends the connection and nothing else."""
from __future__ import annotations

import asyncio
import os
import stat
import struct

import msgpack
import pytest

from node import config as node_config
from node import linkwire as wire
from node.envelope import Door, sign_tx
from node.executor import batch_of
from node.keys import Keypair, read_key_file
from node.link import LinkBusy, LinkServer, listen_socket, socket_address, socket_path
from node.runtime import Validator
from ops import network
from test_runtime_restart import _free_port


@pytest.fixture
async def node(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    validator = Validator(node_config.load(tmp_path / "net" / "municipality"))
    validator.admin = read_key_file(tmp_path / "net" / "keys" / "admin.key")
    await validator.start()
    link = LinkServer(validator, socket_path(validator.config))
    await link.start()
    validator.link = link
    try:
        yield validator
    finally:
        await link.stop()
        await validator.stop()


class Raw:
    """A gateway that writes whatever bytes it is given."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, node, hello: bool = True) -> "Raw":
        with socket_address(node.link.path) as address:
            raw = cls(*await asyncio.open_unix_connection(address))
        if hello:
            raw.send(wire.frame("hello", 0, [wire.VERSION, 1, os.getpid()]))
            kind, _, body = await raw.read()
            assert kind == "welcome" and wire.read_welcome(body) == "municipality"
        return raw

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self) -> tuple[str, int, wire.Reader]:
        length = wire.frame_length(await self.reader.readexactly(4))
        return wire.open_frame(await self.reader.readexactly(length))

    async def closed(self) -> bool:
        """Whether the node ends the connection (reads past anything it sent first)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), 5):
                pass
        except ConnectionError:
            pass
        return True


def register(node) -> bytes:
    return sign_tx(node.admin, node.chain, "member.register",
                   {"key": Keypair.generate().public, "role": "citizen",
                    "age_band": "21plus", "area": "GMS"})


async def test_the_socket_is_the_owners_alone(node):
    mode = node.link.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


async def test_a_gateway_submits_checked_envelopes_and_hears_of_their_block(node):
    gateway = await Raw.connect(node)
    envelopes = [register(node) for _ in range(3)]
    checks = node.door.signature_checks
    gateway.send(wire.frame("submit", 5, envelopes))
    kind, rid, body = await gateway.read()
    answers = wire.read_submitted(body, 3)
    assert (kind, rid) == ("answer", 5)
    assert [status for _, status, _, _ in answers] == ["pending"] * 3
    kind, _, body = await gateway.read()
    notice = wire.read_notice(body)
    assert kind == "notice" and notice.ok == 3 and notice.rejected == 0
    assert set(notice.tx_ids) == {tx_id for tx_id, _, _, _ in answers}
    # the gateway checked the signatures: the node checks none of them, not even to execute
    assert node.door.signature_checks == checks
    gateway.send(wire.frame("submit", 6, envelopes[:1]))
    _, _, body = await gateway.read()
    assert wire.read_submitted(body, 1)[0][1] == "known"
    gateway.send(wire.frame("status", 7, []))
    _, rid, body = await gateway.read()
    status = wire.read_status(body)
    assert rid == 7 and status["height"] == notice.height and status["view_changes"] == 0
    gateway.send(wire.frame("pending", 8, bytes(32)))
    _, rid, body = await gateway.read()
    assert rid == 8 and wire.read_pending(body) == ""


async def test_the_door_still_refuses_what_is_malformed_or_of_another_chain(node):
    gateway = await Raw.connect(node)
    other = sign_tx(node.admin, "other-chain", "member.register", {"key": bytes(32)})
    gateway.send(wire.frame("submit", 1, [b"\x92\xc4\x01x", other]))
    _, _, body = await gateway.read()
    assert [a[1] for a in wire.read_submitted(body, 2)] == ["malformed", "wrong_chain"]


def header(length: int) -> bytes:
    return struct.pack(">I", length)


@pytest.mark.parametrize("name, data", [
    ("over the frame limit", header(wire.MAX_FRAME_BYTES + 1)),
    ("empty frame", header(0)),
    ("not msgpack", header(3) + b"\xc1\xc1\xc1"),
    ("a kind a node sends", wire.frame("notice", 0, [1, b"", 0, 0])),
    ("a submit of none", wire.frame("submit", 1, [])),
    ("a submit of too many", wire.frame("submit", 1, [b"x"] * (wire.MAX_SUBMIT + 1))),
    ("a submit of text", header(14) + msgpack.packb(["submit", 1, ["text"]])),
    ("nested empty arrays", header(5 + 9 + 4096) + b"\x93\xa6submit\x01\xdd"
     + (4096).to_bytes(4, "big") + b"\x90" * 4096),
    ("a second hello", wire.frame("hello", 0, [wire.VERSION, 1, 1])),
    ("a short transaction id", wire.frame("pending", 1, bytes(31))),
])
async def test_a_wrong_frame_ends_that_connection_only(node, name, data):
    gateway = await Raw.connect(node)
    other = await Raw.connect(node)
    gateway.send(data)
    assert await gateway.closed(), name
    other.send(wire.frame("status", 1, []))
    kind, _, _ = await other.read()
    assert kind == "answer"
    assert node.link.connected() == [1]


async def test_the_first_frame_must_be_a_hello(node):
    gateway = await Raw.connect(node, hello=False)
    gateway.send(wire.frame("status", 1, []))
    assert await gateway.closed()


async def test_a_gateway_that_does_not_read_its_notices_is_dropped(node):
    node.link.send_buffer_bytes = 64 * 1024
    envelope = register(node)
    [answer] = node.submit([envelope])
    assert (await node.wait(answer.tx_id, 20))["code"] == "ok"
    record = node.store.block(node.store.head()[0])
    batch = batch_of(record, Door(node.chain))
    sleeper = await Raw.connect(node)
    # the same block's notice again and again, more than the socket's buffers hold,
    # while the gateway reads nothing
    for _ in range(30_000):
        node.link._on_batch(batch)
        if not node.link.connected():
            break
    assert node.link.connected() == []
    assert await sleeper.closed()
    again = await Raw.connect(node)
    again.send(wire.frame("status", 1, []))
    assert (await again.read())[0] == "answer"


async def test_a_second_validator_on_the_same_folder_is_refused(node):
    with pytest.raises(LinkBusy):
        listen_socket(node.link.path)


async def test_a_socket_left_by_a_validator_that_died_is_replaced(tmp_path):
    path = tmp_path / "gateway.sock"
    dead = listen_socket(path)
    dead.close()                # the file stays, nobody listens
    alive = listen_socket(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        alive.close()


async def test_a_long_path_is_reached_through_its_folder(tmp_path):
    folder = tmp_path / ("x" * 60) / ("y" * 60)
    folder.mkdir(parents=True)
    path = folder / "gateway.sock"
    server = listen_socket(path)
    try:
        with socket_address(path) as address:
            assert len(address) < 100
            reader, writer = await asyncio.open_unix_connection(address)
        writer.close()
    finally:
        server.close()
