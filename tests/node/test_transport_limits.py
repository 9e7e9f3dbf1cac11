"""The peer port's limits (node/transport.py) over real sockets on loopback: outsiders and
even hosts that share a validator's address cannot keep it out; idle connections are
evicted or timed out; nobody gets a signature without proving a validator's key, and
the public-key work a HELLO costs is rate-limited; refusals and accept errors are logged
sampled, never a line per attempt.

Addresses: the validators here are all on 127.0.0.1, so a client on 127.0.0.1 stands for
a host that shares a validator's address (loopback, NAT) and clients bound to 127.0.0.2,
127.0.0.3, ... (the whole 127/8 is local on Linux) for outsiders. Every loop below is
bounded in count and every wait in time."""
from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import socket

import pytest
from nacl.signing import SigningKey

import node.ratelimit
import node.slots
import node.transport
from node.frames import Sealer, pack_messages
from node.handshake import (CHALLENGE_BYTES, HELLO_BYTES, Initiator, Roster, initiate)
from node.ratelimit import LOG_KINDS, SampledLog
from node.slots import handshake_slots, source_ip
from node.transport import Transport, TransportLimits
from ops.network import free_base_port

GENESIS = hashlib.sha256(b"genesis of the peer port tests").digest()
# in the order of their public keys: the lower key dials, so here the lower index does
SEEDS = sorted((hashlib.sha256(b"peer port validator %d" % i).digest() for i in range(4)),
               key=lambda seed: bytes(SigningKey(seed).verify_key))
KEYS = tuple(bytes(SigningKey(seed).verify_key) for seed in SEEDS)
ROSTER = Roster(GENESIS, KEYS)
WAIT_S = 10.0
QUICK = dict(connect_timeout_s=2.0, backoff_initial_s=0.02, backoff_max_s=0.2,
             heartbeat_s=0.2, idle_timeout_s=5.0)


class Logs:
    """Stands in for the transport's structlog logger: records (level, event, fields)."""

    def __init__(self):
        self.lines: list[tuple[str, str, dict]] = []

    def __getattr__(self, level: str):
        return lambda event, **fields: self.lines.append((level, event, fields))

    def of(self, event: str) -> list[dict]:
        return [fields for _, name, fields in self.lines if name == event]


@pytest.fixture
def logs(monkeypatch) -> Logs:
    recorded = Logs()
    for module in (node.transport, node.slots, node.ratelimit):
        monkeypatch.setattr(module, "log", recorded)
    return recorded


def listener() -> socket.socket:
    # a port below the ephemeral range, as ops/network.py picks them: a restart binds the
    # same port again, and a peer's dial to a port in that range while nothing listens
    # may be given it as its own local port (it connects to itself) and hold it
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", free_base_port(1, preferred=None)))
    sock.listen(64)
    return sock


class Net:
    """Four validators' addresses on 127.0.0.1; those started are real transports."""

    def __init__(self, limits: TransportLimits):
        self.limits = limits
        self.socks = [listener() for _ in KEYS]
        self.ports = [sock.getsockname()[1] for sock in self.socks]
        self.validators = [(key, "127.0.0.1", port) for key, port in zip(KEYS, self.ports)]
        self.transports: dict[int, Transport] = {}
        self.received: list[tuple[int, int, bytes]] = []

    async def start(self, i: int, sock: socket.socket | None = None) -> Transport:
        if sock is None and self.socks[i] is None:   # a restart: the same address again
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.ports[i]))
            sock.listen(64)
        sock = sock or self.socks[i]
        self.socks[i] = None
        transport = Transport(i, SEEDS[i], self.validators, GENESIS,
                              on_message=lambda peer, m, i=i: self.received.append((i, peer, m)),
                              limits=self.limits)
        await transport.start(sock=sock)
        self.transports[i] = transport
        return transport

    async def stop(self, i: int) -> None:
        await self.transports.pop(i).stop()

    async def close(self) -> None:
        for i in list(self.transports):
            await self.stop(i)
        for sock in self.socks:
            if sock is not None:
                sock.close()


async def until(predicate, timeout_s: float = WAIT_S, what: str = "") -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.005)


async def connect(port: int, source: str = "127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_node(reader: asyncio.StreamReader, timeout_s: float = WAIT_S) -> bytes:
    """What the node sent before it closed the connection."""
    received = b""
    async with asyncio.timeout(timeout_s):
        try:
            while chunk := await reader.read(4096):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def is_closed(reader: asyncio.StreamReader) -> bool:
    return reader.at_eof() or reader.exception() is not None


def hello_as(claimed: int, target: int) -> bytes:
    """A HELLO with validator `claimed`'s public key (anyone can send it)."""
    other = next(i for i in range(4) if i not in (claimed, target))
    hello = bytearray(Initiator(ROSTER, other, SEEDS[other], target, os.urandom(32)).hello())
    hello[-64:-32] = KEYS[claimed]
    return bytes(hello)


async def test_idle_connections_from_a_validators_own_address_cannot_keep_it_out(logs):
    """Problem 1 of the hardening issue, from the worst place: sixteen clients on the
    validators' own address open idle connections and re-open each as soon as it is
    dropped, twice as many as the port holds. The port stays within its bound and the
    validator that dials in links all the same."""
    limits = TransportLimits(max_handshakes=8, reserved_handshakes=2, hello_timeout_s=30.0,
                    handshake_timeout_s=30.0, **QUICK)
    net = Net(limits)
    stop = asyncio.Event()
    opened = [0]
    most = [0]

    async def hog() -> None:
        while not stop.is_set() and opened[0] < 20_000:
            try:
                reader, writer = await connect(net.ports[3])
            except OSError:
                await asyncio.sleep(0.01)
                continue
            opened[0] += 1
            await closed_by_node(reader, 60.0)
            writer.close()

    try:
        target = await net.start(3)
        hogs = [asyncio.create_task(hog()) for _ in range(16)]
        for _ in range(200):
            most[0] = max(most[0], target.pending())
            if target.counters.handshakes_evicted >= 50:
                break
            await asyncio.sleep(0.01)
        assert target.counters.handshakes_evicted >= 50, "the hogs should be churning"
        await net.start(1)
        async with asyncio.timeout(WAIT_S):
            while target.connected() != {1}:
                most[0] = max(most[0], target.pending())
                await asyncio.sleep(0.002)
        assert opened[0] < 20_000, "linked only once the hogs had given up"
        stop.set()
        for task in hogs:
            task.cancel()
        await asyncio.gather(*hogs, return_exceptions=True)
        assert most[0] <= 8 and target.pending() <= 8
    finally:
        stop.set()
        await net.close()
    refused = logs.of("handshake_refused")
    # evicted, or refused while every connection was still being set up ("busy")
    assert {f["reason"] for f in refused} <= {"evicted", "busy", "closed"}
    # thousands of refusals, a handful of lines: the first of each kind, and a summary
    assert target.counters.handshakes_evicted >= 50
    assert len(refused) <= 6, refused
    summary = [f for f in refused if f.get("summary") and f["reason"] == "evicted"]
    assert summary and summary[0]["count"] == target.counters.handshakes_evicted


async def test_outsiders_are_limited_per_address_and_never_take_the_reserved_slots(logs):
    limits = TransportLimits(max_handshakes=8, reserved_handshakes=3, max_handshakes_per_ip=2,
                    hello_timeout_s=30.0, handshake_timeout_s=30.0, **QUICK)
    net = Net(limits)
    try:
        target = await net.start(3)
        # one address: only its two newest connections stay
        first = [await connect(net.ports[3], "127.0.0.2") for _ in range(5)]
        for reader, _ in first[:3]:
            assert await closed_by_node(reader) == b""
        await until(lambda: target.pending() == 2)
        assert not any(is_closed(reader) for reader, _ in first[3:])
        # many addresses: outsiders hold at most 8 - 3 slots, the oldest go first
        more = [await connect(net.ports[3], f"127.0.0.{k}") for k in (3, 3, 4, 4, 5, 5)]
        await until(lambda: target.pending() == 5)
        everyone = first[3:] + more
        await until(lambda: [is_closed(r) for r, _ in everyone] == [True] * 3 + [False] * 5)
        # the validators' address still finds room, and its connections push outsiders
        # out once the port is full; an outsider never pushes them out
        insiders = [await connect(net.ports[3]) for _ in range(8)]
        await until(lambda: all(is_closed(r) for r, _ in everyone))
        await until(lambda: target.pending() == 8)
        late, late_writer = await connect(net.ports[3], "127.0.0.6")
        assert await closed_by_node(late) == b""
        assert not any(is_closed(r) for r, _ in insiders)
        # a validator from that address links, pushing out the oldest idle one
        await net.start(1)
        await until(lambda: target.connected() == {1})
        assert target.pending() <= 8
        for _, writer in first + more + insiders + [(late, late_writer)]:
            writer.close()
    finally:
        await net.close()
    reasons = {f["reason"] for f in logs.of("handshake_refused")}
    assert {"evicted", "busy"} <= reasons


async def test_a_connection_without_a_hello_or_a_proof_is_closed_by_its_deadline(logs):
    limits = TransportLimits(hello_timeout_s=0.2, handshake_timeout_s=0.6, **QUICK)
    net = Net(limits)
    try:
        target = await net.start(3)
        loop = asyncio.get_running_loop()
        began = loop.time()
        reader, writer = await connect(net.ports[3])
        writer.write(b"stads")                  # a start, then silence
        assert await closed_by_node(reader) == b""
        assert 0.15 <= loop.time() - began < 2.0
        writer.close()
        began = loop.time()
        reader, writer = await connect(net.ports[3])
        writer.write(hello_as(0, 3))            # a HELLO, then no PROOF
        assert len(await closed_by_node(reader)) == CHALLENGE_BYTES
        assert 0.5 <= loop.time() - began < 2.0
        writer.close()
        assert target.pending() == 0
    finally:
        await net.close()
    assert [f["reason"] for f in logs.of("handshake_refused")] == [
        "hello timeout", "handshake timeout"]


async def test_hellos_claiming_a_validator_from_elsewhere_are_rate_limited(logs):
    """A HELLO that claims validator 0 from an address that is not validator 0's costs
    the node an X25519 key and a signature check; beyond the per-address and the global
    rates it is refused before either. From validator 0's own address it is not
    limited: that is how a restarted validator always gets its answer."""
    limits = TransportLimits(ip_handshake_rate=0.001, ip_handshake_burst=3,
                    outsider_handshake_rate=0.001, outsider_handshake_burst=5, **QUICK)
    net = Net(limits)

    async def attempt(source: str) -> bytes:
        reader, writer = await connect(net.ports[3], source)
        writer.write(hello_as(0, 3))
        writer.write(bytes(64))                 # a proof that does not verify
        answer = await closed_by_node(reader)
        writer.close()
        return answer

    try:
        target = await net.start(3)
        answers = [len(await attempt("127.0.0.2")) for _ in range(6)]
        assert answers == [CHALLENGE_BYTES] * 3 + [0] * 3      # the address's burst
        answers = [len(await attempt("127.0.0.3")) for _ in range(4)]
        assert answers == [CHALLENGE_BYTES] * 2 + [0] * 2      # what is left globally
        answers = [len(await attempt("127.0.0.1")) for _ in range(20)]
        assert answers == [CHALLENGE_BYTES] * 20               # validator 0's own address
        assert target.counters.handshakes_rate_limited == 5
        # and the real validator 0 links from its address at once
        await net.start(0)
        await until(lambda: 0 in target.connected())
    finally:
        await net.close()
    reasons = [f["reason"] for f in logs.of("handshake_refused") if not f.get("summary")]
    assert sorted(set(reasons)) == ["bad handshake signature", "rate limited"]


async def test_nobody_gets_a_signature_without_a_proof_and_a_restart_still_links(logs):
    """Problem 6 of the hardening issue: clients on the validators' address present a
    validator's public key as fast as they can, with proofs that do not verify. Not one
    of them is answered with a signature, and meanwhile validator 1 stops, comes back
    and links again."""
    net = Net(TransportLimits(**QUICK))
    stop = asyncio.Event()
    answered = []

    async def churn() -> None:
        for _ in range(300):
            if stop.is_set():
                return
            reader, writer = await connect(net.ports[3])
            writer.write(hello_as(1, 3))
            writer.write(os.urandom(64))
            answered.append(await closed_by_node(reader))
            writer.close()

    try:
        target = await net.start(3)
        await net.start(1)
        await until(lambda: target.connected() == {1})
        tasks = [asyncio.create_task(churn()) for _ in range(8)]
        await until(lambda: len(answered) >= 100)
        await net.stop(1)
        await until(lambda: target.connected() == set())
        await net.start(1)
        await until(lambda: target.connected() == {1})
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await net.close()
    assert answered and all(len(a) == CHALLENGE_BYTES for a in answered)
    refused = logs.of("handshake_refused")
    assert len(refused) <= 4 and {f["reason"] for f in refused} == {"bad handshake signature"}
    assert sum(f.get("count", 1) for f in refused if f.get("summary")) == len(answered)


async def test_signed_replies_to_one_validator_are_rate_limited(logs):
    """A validator gone bad (it holds its key) that reconnects in a loop makes the node
    sign for it only within its own rate."""
    net = Net(TransportLimits(peer_handshake_rate=0.001, peer_handshake_burst=3, **QUICK))
    try:
        target = await net.start(3)
        for _ in range(3):
            reader, writer = await connect(net.ports[3])
            await initiate(reader, writer, Initiator(ROSTER, 0, SEEDS[0], 3, os.urandom(32)),
                           WAIT_S)
            writer.close()
        reader, writer = await connect(net.ports[3])
        with pytest.raises(asyncio.IncompleteReadError):
            await initiate(reader, writer, Initiator(ROSTER, 0, SEEDS[0], 3, os.urandom(32)),
                           WAIT_S)
        writer.close()
        assert target.counters.handshakes_rate_limited == 1
        # another validator is not held back by it
        await net.start(1)
        await until(lambda: 1 in target.connected())
    finally:
        await net.close()
    assert [f["reason"] for f in logs.of("handshake_refused")] == ["reply rate limited"]


async def test_refusals_are_logged_per_kind_and_interval_not_per_attempt(logs):
    net = Net(TransportLimits(log_interval_s=60.0, **QUICK))
    try:
        target = await net.start(3)
        for k in range(250):
            reader, writer = await connect(net.ports[3], f"127.0.0.{2 + k % 5}")
            writer.write(os.urandom(HELLO_BYTES))
            await closed_by_node(reader)
            writer.close()
        outsider = Roster(GENESIS, KEYS + (bytes(32),))
        for _ in range(50):
            reader, writer = await connect(net.ports[3])
            hello = bytearray(Initiator(ROSTER, 0, SEEDS[0], 3, os.urandom(32)).hello())
            hello[-64:-32] = outsider.keys[4]
            writer.write(bytes(hello))
            await closed_by_node(reader)
            writer.close()
        assert target.counters.handshakes_refused == 300
        lines_before_stop = len(logs.of("handshake_refused"))
    finally:
        await net.close()
    refused = logs.of("handshake_refused")
    assert lines_before_stop == 2                  # the first of each kind, as it came
    first = {f["reason"]: f for f in refused if not f.get("summary")}
    assert set(first) == {"not a stadsmunt link", "not a validator"}
    assert first["not a stadsmunt link"]["address"] == "127.0.0.2"
    summaries = {f["reason"]: f for f in refused if f.get("summary")}
    assert summaries["not a stadsmunt link"]["count"] == 250
    assert summaries["not a stadsmunt link"]["sources"] == 5
    assert summaries["not a stadsmunt link"]["top_count"] == 50
    assert summaries["not a validator"]["count"] == 50
    assert summaries["not a validator"]["top_source"] == "127.0.0.1"
    assert len(refused) == 4


async def test_a_new_interval_starts_a_new_sample_and_summary(logs):
    net = Net(TransportLimits(log_interval_s=1.0, **QUICK))
    try:
        await net.start(3)
        for _ in range(2):
            for _ in range(10):
                reader, writer = await connect(net.ports[3])
                writer.write(os.urandom(HELLO_BYTES))
                await closed_by_node(reader)
                writer.close()
            await asyncio.sleep(1.1)
    finally:
        await net.close()
    refused = logs.of("handshake_refused")
    assert [f.get("count") for f in refused] == [None, 10, None, 10]


class FailingListener(socket.socket):
    """A listening socket whose first `failures` accepts fail as when the process is
    out of descriptors."""

    failures = 0
    calls = 0

    def accept(self):
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_out_of_descriptors_pauses_accepting_without_a_line_per_attempt(logs):
    sock = FailingListener(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.failures = 6
    net = Net(TransportLimits(accept_backoff_s=0.01, **QUICK))
    net.socks[3].close()
    net.ports[3] = sock.getsockname()[1]
    net.validators[3] = (KEYS[3], "127.0.0.1", net.ports[3])
    loop = asyncio.get_running_loop()
    handled = []
    loop.set_exception_handler(lambda _loop, context: handled.append(context))
    try:
        target = await net.start(3, sock=sock)
        waiting = [await connect(net.ports[3]) for _ in range(3)]
        # accepting pauses 10, 20, 40, 80, 160, 320 ms (at most a second) and resumes
        await until(lambda: target.pending() == 3, timeout_s=5.0)
        assert target.counters.accept_errors == 6 and sock.calls < 20
        await net.start(0)
        await until(lambda: 0 in target.connected())
        for _, writer in waiting:
            writer.close()
    finally:
        await net.close()
        loop.set_exception_handler(None)
    assert not handled, "asyncio's handler should hear nothing (it prints tracebacks)"
    failed = logs.of("accept_failed")
    assert len(failed) == 2 and failed[0]["reason"] == "EMFILE"
    assert failed[1]["summary"] and failed[1]["count"] == 6


def test_the_unauthenticated_connections_stay_well_under_the_descriptor_limit():
    limits = TransportLimits()
    assert handshake_slots(limits, None, me=3) == (64, 16)
    assert handshake_slots(limits, 65_536, me=3) == (64, 16)
    assert handshake_slots(limits, 256, me=3) == (32, 16)  # an eighth of the descriptors
    assert handshake_slots(limits, 40, me=3) == (5, 2)
    assert handshake_slots(limits, 8, me=3) == (4, 2)


async def test_a_flood_of_half_open_connections_is_bounded_and_validators_link(logs):
    """Problem 4 of the hardening issue, the peer port's side: a thousand connections
    that never send a byte, from the validators' address and from outsiders. The node
    holds at most its cap of them (a fraction of its descriptors), and its peers link."""
    limits = TransportLimits(max_handshakes=16, reserved_handshakes=4, hello_timeout_s=30.0,
                    handshake_timeout_s=30.0, **QUICK)
    net = Net(limits)
    held = []
    try:
        target = await net.start(3)
        for k in range(1000):
            source = "127.0.0.1" if k % 2 else f"127.0.0.{2 + k % 50}"
            held.append(await connect(net.ports[3], source))
            if k % 100 == 99:
                await asyncio.sleep(0)
                assert target.pending() <= 16
        await until(lambda: sum(not is_closed(r) for r, _ in held) <= 16)
        for i in (0, 1, 2):
            await net.start(i)
        await until(lambda: target.connected() == {0, 1, 2})
        assert target.pending() <= 16
        # idle outsiders were evicted; outsiders that found the port full of connections
        # from the validators' address were refused (they never evict those)
        assert target.counters.handshakes_refused >= 1000 - 16
        assert target.counters.handshakes_evicted >= 400
    finally:
        for _, writer in held:
            writer.close()
        await net.close()
    assert len(logs.of("handshake_refused")) <= 6


def test_the_sampled_log_keeps_a_bounded_number_of_kinds(logs):
    sampled = SampledLog(10.0, now=0.0, me=3)
    for peer in range(200):                     # more kinds than it keeps apart
        for k in range(5):
            sampled.note(1.0, "bad_peer_input", {"peer": peer}, reason=f"junk {k}")
    assert len(logs.lines) == LOG_KINDS + 1
    sampled.tick(5.0)                           # within the interval: nothing yet
    assert len(logs.lines) == LOG_KINDS + 1
    sampled.tick(11.0)
    summaries = [f for f in logs.of("bad_peer_input") if f.get("summary")]
    assert len(summaries) == LOG_KINDS + 1
    assert sum(f["count"] for f in summaries) == 1000
    assert summaries[-1]["other_kinds"] and summaries[-1]["count"] == 5 * (200 - 64)
    assert all(f["me"] == 3 for f in logs.of("bad_peer_input"))


def test_addresses_are_compared_in_one_spelling():
    assert source_ip("::ffff:10.1.2.3") == "10.1.2.3"
    assert source_ip("2001:db8:0:0::1") == "2001:db8::1"
    assert source_ip("fe80::1%eth0") == "fe80::1"
    assert source_ip("127.0.0.1") == "127.0.0.1"
