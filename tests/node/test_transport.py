"""node/transport.py over real sockets on 127.0.0.1: validators link up and talk both
ways, outsiders and misbehaving peers are cut off while the rest carry on, a restarted
peer is linked again, and a dead or frozen peer costs a bounded amount of memory.

Every wait is on an event (a message, a link going up or down, a socket's end of file)
with a timeout; nothing sleeps in place of synchronisation. The rogue peers below speak
the real handshake and frame code with a genuine validator key, so what they test is
the receiving node's checks, not a broken client."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest
from nacl.signing import SigningKey

from node.frames import HEADER, Opener, Sealer, pack_messages
from node.handshake import (CHALLENGE_BYTES, Initiator, Responder, Roster, initiate,
                            respond)
from node.peerlink import Link
from node.transport import PeerInputError, Transport, TransportLimits

GENESIS = hashlib.sha256(b"genesis of the transport tests").digest()
# in the order of their public keys: the lower key dials, so here the lower index does
SEEDS = sorted((hashlib.sha256(b"transport validator %d" % i).digest() for i in range(4)),
               key=lambda seed: bytes(SigningKey(seed).verify_key))
KEYS = tuple(bytes(SigningKey(seed).verify_key) for seed in SEEDS)
ROSTER = Roster(GENESIS, KEYS)
FAST = TransportLimits(handshake_timeout_s=2.0, connect_timeout_s=2.0, backoff_initial_s=0.02,
              backoff_max_s=0.2, heartbeat_s=0.2, idle_timeout_s=5.0)
WAIT_S = 10.0
POISON = b"a message the receiver chokes on"
BAD_INPUT = b"a message the receiver refuses as the peer's fault"


def listener(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    sock.setblocking(False)
    return sock


class Net:
    """Four validators' addresses and, for those started, their transports and what each
    received. `changed` fires on every delivery and every link going up or down."""

    def __init__(self, limits: TransportLimits = FAST):
        self.limits = limits
        self.socks = [listener() for _ in KEYS]
        self.ports = [sock.getsockname()[1] for sock in self.socks]
        self.validators = [(key, "127.0.0.1", port) for key, port in zip(KEYS, self.ports)]
        self.received: dict[int, list[tuple[int, bytes]]] = {i: [] for i in range(len(KEYS))}
        self.links_down: list[tuple[int, int]] = []
        self.transports: dict[int, Transport] = {}
        self.changed = asyncio.Event()
        self.fail_with: type[Exception] = RuntimeError
        self.fail_links = False

    def _deliver(self, me: int, peer: int, message: bytes) -> None:
        self.received[me].append((peer, message))
        self.changed.set()
        if message == POISON:
            raise self.fail_with("a receiver with a bug")
        if message == BAD_INPUT:
            raise PeerInputError("not a message of ours")

    def _link(self, me: int, peer: int, up: bool) -> None:
        if not up:
            self.links_down.append((me, peer))
        self.changed.set()
        if self.fail_links and up:
            raise RuntimeError("a link callback with a bug")

    async def start(self, i: int) -> Transport:
        if self.socks[i] is None:  # a restart: the same address again
            self.socks[i] = listener(self.ports[i])
        transport = Transport(i, SEEDS[i], self.validators, GENESIS,
                              on_message=lambda peer, m, i=i: self._deliver(i, peer, m),
                              limits=self.limits,
                              on_link=lambda peer, up, i=i: self._link(i, peer, up))
        await transport.start(sock=self.socks[i])
        self.transports[i] = transport
        return transport

    async def stop(self, i: int) -> None:
        await self.transports.pop(i).stop()
        self.socks[i] = None

    def absent(self, i: int) -> socket.socket:
        """Validator i is not started; its address is handed to the caller."""
        sock, self.socks[i] = self.socks[i], None
        return sock

    async def until(self, predicate, timeout_s: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def meshed(self, members) -> bool:
        return all(self.transports[i].connected() == set(members) - {i} for i in members)

    def got(self, me: int, sender: int) -> list[bytes]:
        return [m for peer, m in self.received[me] if peer == sender]

    async def close(self) -> None:
        for i in list(self.transports):
            await self.stop(i)
        for sock in self.socks:
            if sock is not None:
                sock.close()


@pytest.fixture
async def net():
    network = Net()
    yield network
    await network.close()


async def rogue_dial(port: int, me: int, peer: int):
    """A raw client that completes the real handshake as validator `me`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = await initiate(reader, writer,
                             Initiator(ROSTER, me, SEEDS[me], peer, os.urandom(32)), 2.0)
    return reader, writer, Sealer(session.send_key), Opener(session.recv_key)


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Reads (and discards heartbeats) until the other side hangs up."""
    async with asyncio.timeout(WAIT_S):
        while await reader.read(1 << 16):
            pass


async def test_four_validators_link_up_and_exchange_messages_both_ways(net):
    for i in range(4):
        await net.start(i)
    await net.until(lambda: net.meshed(range(4)))
    for i, transport in net.transports.items():
        for peer in range(4):
            if peer != i:
                for k in range(50):
                    transport.send(peer, b"%d to %d #%d" % (i, peer, k))
        transport.broadcast(b"all from %d" % i)
    await net.until(lambda: all(len(net.received[i]) == 3 * 51 for i in range(4)))
    for me in range(4):
        for sender in range(4):
            if sender != me:
                expected = [b"%d to %d #%d" % (sender, me, k) for k in range(50)]
                assert net.got(me, sender) == expected + [b"all from %d" % sender]
    assert not net.links_down
    stats = net.transports[0].stats()
    assert stats["messages_sent"] == 3 * 51 and stats["messages_received"] == 3 * 51
    assert stats["peers_connected"] == 3 and stats["messages_dropped"] == 0
    # coalescing: 153 messages went out in far fewer frames
    assert stats["frames_sent"] < 3 * 51


async def test_a_message_over_the_limit_is_refused_at_send(net):
    transport = await net.start(0)
    with pytest.raises(ValueError):
        transport.send(1, bytes(FAST.max_message_bytes + 1))
    transport.send(1, bytes(FAST.max_message_bytes))
    assert transport.queued(1) == (1, FAST.max_message_bytes + 4)


async def test_a_key_outside_the_validator_set_is_refused_and_cannot_inject(net):
    for i in (1, 2, 3):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2, 3)))
    outsider_seed = hashlib.sha256(b"not a validator").digest()
    outsider_roster = Roster(GENESIS, KEYS + (bytes(SigningKey(outsider_seed).verify_key),))
    reader, writer = await asyncio.open_connection("127.0.0.1", net.ports[3])
    outsider = Initiator(outsider_roster, 4, outsider_seed, 3, os.urandom(32))
    writer.write(outsider.hello())
    # frames under a key of its own choosing, in case the node would read on
    writer.write(Sealer(bytes(32)).seal(pack_messages([b"injected"])))
    assert await reader.read() == b"", "the node answered an outsider"
    writer.close()
    assert net.transports[3].stats()["handshakes_failed"] == 1
    assert all(b"injected" not in m for i in (1, 2, 3) for _, m in net.received[i])
    assert net.transports[3].connected() == {1, 2}


async def test_a_validators_public_key_without_its_seed_gets_no_signature(net):
    for i in (1, 2, 3):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2, 3)))
    # the impostor sends validator 0's public key but cannot sign as validator 0
    impostor = Initiator(ROSTER, 1, SEEDS[1], 3, os.urandom(32))
    reader, writer = await asyncio.open_connection("127.0.0.1", net.ports[3])
    hello = bytearray(impostor.hello())
    hello[-64:-32] = KEYS[0]
    writer.write(bytes(hello))
    challenge = await reader.readexactly(CHALLENGE_BYTES)
    assert challenge[:32] == KEYS[3]      # a key and a fresh ephemeral key: nothing signed
    writer.write(os.urandom(64))
    async with asyncio.timeout(WAIT_S):
        assert await reader.read() == b"", "a signature for a proof that does not verify"
    writer.close()
    assert net.transports[3].stats()["handshakes_failed"] == 1
    assert 0 not in net.transports[3].connected() and not net.received[3]


@pytest.mark.parametrize("bad_bytes", [
    HEADER.pack(FAST.max_frame_bytes + 1),          # over the frame limit
    HEADER.pack(3) + b"abc",                        # shorter than the tag
    HEADER.pack(40) + os.urandom(40),               # garbage that does not authenticate
], ids=["oversized", "too short", "garbage"])
async def test_a_validator_sending_bad_frames_is_disconnected_and_the_rest_carry_on(
        net, bad_bytes):
    for i in (1, 2, 3):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2, 3)))
    reader, writer, sealer, _ = await rogue_dial(net.ports[2], me=0, peer=2)
    await net.until(lambda: 0 in net.transports[2].connected())
    writer.write(sealer.seal(pack_messages([b"honest first"])))
    await net.until(lambda: net.got(2, 0) == [b"honest first"])
    writer.write(bad_bytes)
    await until_closed(reader)
    writer.close()
    await net.until(lambda: 0 not in net.transports[2].connected())
    assert net.transports[2].stats()["frames_rejected"] == 1
    for i in (1, 2, 3):
        net.transports[i].broadcast(b"still here %d" % i)
    await net.until(lambda: all(
        net.got(me, peer)[-1:] == [b"still here %d" % peer]
        for me in (1, 2, 3) for peer in (1, 2, 3) if me != peer))
    assert net.got(2, 0) == [b"honest first"]
    assert net.meshed((1, 2, 3))


@pytest.mark.parametrize("attack", ["replayed", "reordered", "altered"])
async def test_a_replayed_reordered_or_altered_frame_drops_the_link(net, attack):
    for i in (1, 2, 3):
        await net.start(i)
    reader, writer, sealer, _ = await rogue_dial(net.ports[1], me=0, peer=1)
    first = sealer.seal(pack_messages([b"one"]))
    second = sealer.seal(pack_messages([b"two"]))
    writer.write(first)
    await net.until(lambda: net.got(1, 0) == [b"one"])
    if attack == "replayed":
        writer.write(first)
    elif attack == "reordered":
        writer.write(sealer.seal(pack_messages([b"three"])))
    else:
        altered = bytearray(second)
        altered[-20] ^= 0x01
        writer.write(bytes(altered))
    await until_closed(reader)
    writer.close()
    assert net.got(1, 0) == [b"one"]
    assert net.transports[1].stats()["frames_rejected"] == 1


async def test_a_peer_that_stops_and_restarts_is_linked_again(net):
    for i in range(4):
        await net.start(i)
    await net.until(lambda: net.meshed(range(4)))
    # validator 1 is dialled by 0 and dials 2 and 3: both directions of reconnection
    await net.stop(1)
    await net.until(lambda: all(1 not in net.transports[i].connected() for i in (0, 2, 3)))
    await net.start(1)
    await net.until(lambda: net.meshed(range(4)))
    for i in range(4):
        net.transports[i].broadcast(b"after restart from %d" % i)
    await net.until(lambda: all(
        b"after restart from %d" % peer in net.got(me, peer)
        for me in range(4) for peer in range(4) if me != peer))


async def test_a_dead_peers_queue_stays_within_its_bound_while_others_receive():
    limits = TransportLimits(max_queue_bytes=64 * 1024, max_queue_messages=100,
                    backoff_initial_s=0.02, backoff_max_s=0.2, heartbeat_s=0.2,
                    idle_timeout_s=5.0)
    net = Net(limits)
    try:
        net.absent(3).close()  # nobody listens at validator 3's address
        for i in (0, 1, 2):
            await net.start(i)
        await net.until(lambda: net.meshed((0, 1, 2)))
        sender = net.transports[0]
        for round_ in range(20):
            for k in range(50):
                sender.broadcast(b"round %d message %d" % (round_, k) + bytes(100))
            assert sender.queued(3)[0] <= 100 and sender.queued(3)[1] <= 64 * 1024
            # the live peers drain their queues: wait for each round to arrive
            await net.until(lambda: len(net.got(1, 0)) == len(net.got(2, 0)) == 50 * (round_ + 1))
        assert sender.dropped(3) == 20 * 50 - sender.queued(3)[0]
        assert sender.dropped(1) == sender.dropped(2) == 0
        assert net.got(1, 0) == net.got(2, 0)
    finally:
        await net.close()


async def test_a_frozen_peer_costs_bounded_memory_and_does_not_stall_the_others():
    limits = TransportLimits(max_queue_bytes=256 * 1024, max_queue_messages=1000,
                    write_buffer_bytes=64 * 1024, max_frame_bytes=128 * 1024,
                    backoff_initial_s=0.02, backoff_max_s=0.2, heartbeat_s=0.2,
                    idle_timeout_s=30.0)
    net = Net(limits)
    frozen = []  # the frozen validator 3's sockets, kept open and never read

    async def accept_and_freeze(reader, writer):
        responder = Responder(ROSTER, 3, SEEDS[3], os.urandom(32))
        await respond(reader, writer, responder, 2.0)
        frozen.append(writer)
        net.changed.set()

    server = await asyncio.start_server(accept_and_freeze, sock=net.absent(3))
    try:
        for i in (0, 1, 2):
            await net.start(i)
        await net.until(lambda: all(net.transports[i].connected() == {0, 1, 2, 3} - {i}
                                      for i in (0, 1, 2)) and len(frozen) == 3)
        sender = net.transports[0]
        payload = bytes(1000)
        rounds = 100  # 100 rounds of 200 kB: 20 MB, far beyond the kernel's buffers
        for round_ in range(rounds):
            for k in range(200):
                sender.broadcast(b"%d/%d" % (round_, k) + payload)
            await net.until(lambda: len(net.got(1, 0)) == len(net.got(2, 0)) == 200 * (round_ + 1))
            assert sender.queued(3)[1] <= limits.max_queue_bytes
            assert sender.buffered(3) <= limits.write_buffer_bytes + limits.max_frame_bytes
        assert sender.dropped(3) > 0, "the frozen peer should have overflowed its queue"
        assert sender.dropped(1) == sender.dropped(2) == 0
        assert 3 in sender.connected()
    finally:
        await net.close()
        for writer in frozen:
            writer.transport.abort()
        server.close()


async def test_a_silent_link_is_dropped_while_heartbeats_keep_the_others_up():
    limits = TransportLimits(heartbeat_s=0.1, idle_timeout_s=1.0, backoff_initial_s=0.02,
                    backoff_max_s=0.2)
    net = Net(limits)
    try:
        for i in (1, 2, 3):
            await net.start(i)
        await net.until(lambda: net.meshed((1, 2, 3)))
        reader, writer, _, _ = await rogue_dial(net.ports[1], me=0, peer=1)
        # the rogue reads (so it is not blocked) but never sends a frame
        await until_closed(reader)
        writer.close()
        assert net.links_down == [(1, 0)], "only the silent link went down"
        assert net.meshed((1, 2, 3))
    finally:
        await net.close()


async def test_a_handshake_that_stalls_is_cut_off_by_its_timeout():
    net = Net(TransportLimits(handshake_timeout_s=0.3, backoff_initial_s=0.02, backoff_max_s=0.2))
    try:
        await net.start(3)
        reader, writer = await asyncio.open_connection("127.0.0.1", net.ports[3])
        writer.write(b"stadsmunt")  # a start, then silence
        async with asyncio.timeout(WAIT_S):
            assert await reader.read() == b""
        writer.close()
        assert net.transports[3].stats()["handshakes_failed"] == 1
    finally:
        await net.close()


async def test_a_higher_key_dialling_a_lower_one_is_refused(net):
    await net.start(1)
    reader, writer = await asyncio.open_connection("127.0.0.1", net.ports[1])
    writer.write(Initiator(ROSTER, 3, SEEDS[3], 1, os.urandom(32)).hello())
    assert await reader.read() == b""
    writer.close()
    assert not net.transports[1].connected()


async def test_a_receiver_refusing_peer_input_keeps_the_link_and_gets_the_next_message(
        net):
    for i in (1, 2):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2)))
    net.transports[1].send(2, BAD_INPUT)
    net.transports[1].send(2, b"after")
    await net.until(lambda: net.got(2, 1) == [BAD_INPUT, b"after"])
    assert net.transports[2].connected() == {1} and not net.links_down
    assert net.transports[2].stats()["peer_input_rejected"] == 1
    assert net.transports[2].failure is None


@pytest.mark.parametrize("error", [RuntimeError, AssertionError, OSError, TimeoutError])
async def test_a_receiver_that_fails_stops_the_transport_and_the_error_reaches_the_owner(
        net, error):
    """Not the peer's fault: an assertion of the replica, an error of the ledger (even
    one that is an OSError, like a failed disk write) must not be taken for a socket
    error and shrugged off with the link up."""
    for i in (1, 2):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2)))
    net.fail_with = error
    watcher = asyncio.create_task(net.transports[2].wait_failure())
    net.transports[1].send(2, POISON)
    net.transports[1].send(2, b"never delivered")
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(error, match="a receiver with a bug"):
            await watcher
    transport = net.transports[2]
    assert isinstance(transport.failure, error)
    assert net.got(2, 1) == [POISON]
    assert transport.connected() == set()
    # the failed node is gone for its peers too (its listener is closed)
    await net.until(lambda: 2 not in net.transports[1].connected())
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", net.ports[2])


async def test_a_link_callback_that_fails_stops_the_transport(net):
    await net.start(1)
    net.fail_links = True
    await net.start(2)
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(RuntimeError, match="a link callback with a bug"):
            await net.transports[2].wait_failure()
    assert net.transports[2].connected() == set()


async def test_a_writer_that_fails_stops_the_transport(net, monkeypatch):
    """A link's writer is one of the transport's own tasks: a bug there stops the
    transport (and so the validator) instead of ending the task silently and leaving
    the link to flap."""
    async def write_loop(self):
        raise RuntimeError("a writer with a bug")
    monkeypatch.setattr(Link, "write_loop", write_loop)
    for i in (1, 2):
        await net.start(i)
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(RuntimeError, match="a writer with a bug"):
            await net.transports[1].wait_failure()
    assert net.transports[1].connected() == set()


async def test_a_halted_transport_delivers_nothing_more_and_has_not_failed(net):
    """halt(): the validator failed elsewhere; the links close at once and nothing
    further is delivered, but the transport reports no failure of its own."""
    for i in (1, 2):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2)))
    net.transports[2].halt()
    net.transports[1].send(2, b"never delivered")
    await net.until(lambda: 2 not in net.transports[1].connected())
    assert net.transports[2].connected() == set() and net.got(2, 1) == []
    assert net.transports[2].failure is None


async def test_a_single_validator_network_has_no_links_and_broadcast_goes_nowhere():
    sock = listener()
    transport = Transport(0, SEEDS[0], [(KEYS[0], "127.0.0.1", sock.getsockname()[1])],
                          GENESIS, on_message=lambda peer, m: None, limits=FAST)
    await transport.start(sock=sock)
    transport.broadcast(b"to nobody")
    assert transport.connected() == set() and transport.stats()["messages_sent"] == 0
    await transport.stop()


def test_a_seed_that_is_not_the_validators_key_is_refused():
    validators = [(key, "127.0.0.1", 1) for key in KEYS]
    with pytest.raises(ValueError):
        Transport(0, SEEDS[1], validators, GENESIS, on_message=lambda peer, m: None)


async def test_a_frame_of_many_messages_lets_the_loop_turn_while_it_is_delivered(net):
    """20,000 catch-up requests in one frame once held a validator's loop for seconds:
    between every few dozen messages of a frame, other tasks (ticks, the gateway) run."""
    for i in (1, 2):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2)))
    turns = 0
    seen: list[int] = []                  # the loop turns counted when each arrived

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)
    deliver = net._deliver

    def counting(me: int, peer: int, message: bytes) -> None:
        if me == 2:
            seen.append(turns)
        deliver(me, peer, message)
    net._deliver = counting
    task = asyncio.create_task(ticker())
    try:
        frames = net.transports[2].stats()["frames_received"]
        for k in range(2_000):
            net.transports[1].send(2, b"m%d" % k)
        await net.until(lambda: len(net.got(2, 1)) == 2_000)
    finally:
        task.cancel()
    frames = net.transports[2].stats()["frames_received"] - frames
    assert frames < 20                                # the messages came in a few frames
    assert len(set(seen)) >= 2_000 // 64 - frames     # yet the loop turned within them


async def test_a_shunned_peer_loses_its_link_and_the_rest_of_its_frame_then_links_again(
        net):
    """What node/evidence.py does to a partner that sent a provably bad message: its link
    goes at once (the rest of the frame is not delivered), no link with it either way
    until the time is up, then it links again."""
    for i in (1, 2):
        await net.start(i)
    await net.until(lambda: net.meshed((1, 2)))
    deliver = net._deliver

    def shunning(me: int, peer: int, message: bytes) -> None:
        deliver(me, peer, message)
        if me == 2 and message == b"bad 0":
            net.transports[2].shun(peer, 0.5)
    net._deliver = shunning
    loop = asyncio.get_running_loop()
    for k in range(100):
        net.transports[1].send(2, b"bad %d" % k)
    await net.until(lambda: (1, 2) in net.links_down or (2, 1) in net.links_down)
    shunned_at = loop.time()
    assert net.got(2, 1) == [b"bad 0"]
    assert net.transports[2].stats()["links_shunned"] == 1
    await net.until(lambda: net.meshed((1, 2)))
    assert loop.time() - shunned_at >= 0.45       # not before its time was up
    net.transports[1].send(2, b"after")
    await net.until(lambda: net.got(2, 1)[-1:] == [b"after"])
