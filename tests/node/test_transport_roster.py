"""node/transport.py with a roster that changes at run time: validators added while the
transports run link up and talk; `admit` cuts a peer off (its link, its handshakes, its
messages) and admitting it again relinks; the lower public key of a pair dials, so two
validators whose rosters hold them in different orders link exactly once; the roster is
bounded and a bad argument changes nothing.

Every wait is on an event (a message, a link going up or down) or a counter reaching a
value, with a timeout; nothing sleeps in place of synchronisation."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest
from nacl.signing import SigningKey
from structlog.testing import capture_logs

from node.handshake import CHALLENGE_BYTES, MAX_ROSTER, Initiator, Roster
from node.slots import PeerAddresses
from node.transport import Transport, TransportLimits

GENESIS = hashlib.sha256(b"genesis of the roster tests").digest()
# in the order of their public keys: validator 0 has the lowest, so it dials the others
SEEDS = sorted((hashlib.sha256(b"roster validator %d" % i).digest() for i in range(4)),
               key=lambda seed: bytes(SigningKey(seed).verify_key))
KEYS = tuple(bytes(SigningKey(seed).verify_key) for seed in SEEDS)
NAMES = ("anna", "bram", "cor", "dirk")
FAST = TransportLimits(handshake_timeout_s=2.0, connect_timeout_s=2.0,
                       backoff_initial_s=0.02, backoff_max_s=0.2, heartbeat_s=0.2,
                       idle_timeout_s=5.0)
WAIT_S = 10.0


def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


class Nodes:
    """Validators by their number in KEYS (0 the lowest key); each transport is made
    with the roster order the test gives. `changed` fires on every delivery and every
    link going up or down."""

    def __init__(self):
        self.socks = [listener() for _ in KEYS]
        self.addresses = [("127.0.0.1", sock.getsockname()[1]) for sock in self.socks]
        self.transports: dict[int, Transport] = {}
        self.received: dict[int, list[tuple[bytes, bytes]]] = {i: [] for i in range(4)}
        self.changed = asyncio.Event()

    async def start(self, i: int, order) -> Transport:
        """Validator i with a roster of the validators `order` (i among them), in that
        order."""
        order = list(order)
        validators = [(KEYS[v], *self.addresses[v]) for v in order]
        holder: list[Transport] = []

        def deliver(peer: int, message: bytes) -> None:
            # by key, not index: the indices differ from one transport to the next
            self.received[i].append((holder[0].key_of(peer), message))
            self.changed.set()

        transport = Transport(order.index(i), SEEDS[i], validators, GENESIS,
                              on_message=deliver, limits=FAST,
                              on_link=lambda peer, up: self.changed.set(),
                              names=[NAMES[v] for v in order])
        holder.append(transport)
        await transport.start(sock=self.socks[i])
        self.socks[i] = None
        self.transports[i] = transport
        return transport

    def add(self, i: int, peer: int, with_address: bool = True) -> int:
        address = self.addresses[peer] if with_address else None
        return self.transports[i].add_peer(KEYS[peer], address, NAMES[peer])

    def linked(self, i: int) -> set[int]:
        """The validators (numbers in KEYS) validator i has a link with."""
        transport = self.transports[i]
        return {KEYS.index(transport.key_of(peer)) for peer in transport.connected()}

    def send(self, i: int, to: int, message: bytes) -> None:
        transport = self.transports[i]
        transport.send(transport.index_of(KEYS[to]), message)

    def got(self, i: int, sender: int) -> list[bytes]:
        return [m for key, m in self.received[i] if key == KEYS[sender]]

    async def until(self, predicate, timeout_s: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def counted(self, predicate, timeout_s: float = WAIT_S) -> None:
        """For counters no callback reports (refused handshakes): looks again each
        loop iteration, bounded in time."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0)

    async def close(self) -> None:
        for transport in self.transports.values():
            await transport.stop()
        for sock in self.socks:
            if sock is not None:
                sock.close()


@pytest.fixture
async def nodes():
    made = Nodes()
    yield made
    await made.close()


async def exchange(nodes: Nodes, pairs, tag: bytes) -> None:
    """Each of `pairs` sends the other a message; waits until all have arrived."""
    for a, b in pairs:
        nodes.send(a, b, tag + b" %d to %d" % (a, b))
        nodes.send(b, a, tag + b" %d to %d" % (b, a))
    await nodes.until(lambda: all(
        tag + b" %d to %d" % (a, b) in nodes.got(b, a)
        and tag + b" %d to %d" % (b, a) in nodes.got(a, b) for a, b in pairs))


async def test_peers_added_to_running_transports_link_and_talk_both_ways(nodes):
    # each starts knowing only itself, then learns the other (the roster grows)
    one = await nodes.start(0, [0])
    two = await nodes.start(1, [1])
    assert one.connected() == two.connected() == set()
    assert nodes.add(0, 1) == 1 and nodes.add(1, 0) == 1
    await nodes.until(lambda: nodes.linked(0) == {1} and nodes.linked(1) == {0})
    for k in range(20):
        nodes.send(0, 1, b"up %d" % k)
        nodes.send(1, 0, b"down %d" % k)
    await nodes.until(lambda: len(nodes.got(1, 0)) == len(nodes.got(0, 1)) == 20)
    assert nodes.got(1, 0) == [b"up %d" % k for k in range(20)]
    assert nodes.got(0, 1) == [b"down %d" % k for k in range(20)]
    # adding a known key again changes nothing and gives the same index
    assert one.add_peer(KEYS[1], None, None) == 1 and len(one.roster.keys) == 2
    assert one.stats()["links_opened"] == two.stats()["links_opened"] == 1
    assert one.names == ["anna", "bram"] and one.admitted() == {0, 1}


async def test_a_validator_added_later_links_with_everyone_whatever_the_order(nodes):
    """Three validators know each other from the start; a fourth joins. Each of the
    others adds it at its next index; it knows them in an order of its own."""
    for i in (0, 1, 2):
        await nodes.start(i, [2, 0, 1])
    await nodes.until(lambda: all(nodes.linked(i) == {0, 1, 2} - {i} for i in (0, 1, 2)))
    newcomer = await nodes.start(3, [3, 1, 2, 0])
    for i in (0, 1, 2):
        assert nodes.add(i, 3) == 3
    await nodes.until(lambda: all(nodes.linked(i) == {0, 1, 2, 3} - {i} for i in range(4)))
    await exchange(nodes, [(3, 0), (3, 1), (3, 2), (0, 1)], b"joined")
    assert newcomer.stats()["links_opened"] == 3
    for i in (0, 1, 2):
        assert nodes.transports[i].stats()["links_opened"] == 3


async def test_the_lower_key_dials_so_rosters_in_other_orders_link_exactly_once(nodes):
    """0 has the lowest key, 3 the highest. With rosters in opposite orders a rule by
    index would have both sides of every pair dial (and refuse each other); by key
    exactly one side of each pair dials and is taken, and the links stay."""
    orders = {0: [3, 2, 1, 0], 1: [0, 1, 2, 3], 2: [1, 3, 0, 2], 3: [3, 0, 2, 1]}
    for i, order in orders.items():
        await nodes.start(i, order)
    await nodes.until(lambda: all(nodes.linked(i) == {0, 1, 2, 3} - {i} for i in range(4)))
    # many round trips over every link: long enough for a second dial or a replacement
    # to show (each side's backoff starts at 20 ms), and each must arrive on the link
    for round_ in range(30):
        await exchange(nodes, [(a, b) for a in range(4) for b in range(a + 1, 4)],
                       b"round %d" % round_)
    for i, transport in nodes.transports.items():
        stats = transport.stats()
        assert stats["links_opened"] == 3 and stats["links_closed"] == 0, (i, stats)
        assert stats["handshakes_failed"] == 0, (i, stats)     # nobody dialled wrongly
    # who dialled whom: the lower key is the initiator of each pair
    for i, transport in nodes.transports.items():
        assert {KEYS.index(transport.key_of(p)) for p in transport._dialers} == \
            set(range(i + 1, 4))


async def test_a_peer_not_admitted_is_cut_off_and_admitting_it_again_relinks(nodes):
    """Validator 2 stops admitting validator 1 (which dials it: its key is lower): the
    link closes at once, 1's handshakes are refused before anything is signed, nothing
    of 1's reaches 2 and what 2 had for 1 is dropped. Admitted again, 1 links again."""
    for i in (0, 1, 2):
        await nodes.start(i, [0, 1, 2])
    await nodes.until(lambda: all(nodes.linked(i) == {0, 1, 2} - {i} for i in (0, 1, 2)))
    two = nodes.transports[2]
    for k in range(5):
        nodes.send(2, 1, b"queued %d" % k)      # still in the queue: no turn of the loop
    with capture_logs() as logs:
        two.admit([KEYS[0], KEYS[2]])
        assert two.connected() == {0}, "closed at once"
        assert two.admitted() == {0, 2}
        nodes.send(2, 1, b"after")
        two.broadcast(b"to the admitted")
        await nodes.until(lambda: 2 not in nodes.linked(1))
        refused = two.stats()["handshakes_refused"]
        # 1 keeps dialling (it still admits 2); each attempt is refused at its HELLO
        await nodes.counted(lambda: two.stats()["handshakes_refused"] >= refused + 3)
        nodes.send(1, 2, b"from the left out")
        reader, writer = await asyncio.open_connection(*nodes.addresses[2])
        writer.write(Initiator(Roster(GENESIS, KEYS[:3]), 1, SEEDS[1], 2,
                               os.urandom(32)).hello())
        async with asyncio.timeout(WAIT_S):
            assert await reader.read() == b"", "answered a peer not admitted"
        writer.close()
        await nodes.until(lambda: nodes.got(0, 2)[-1:] == [b"to the admitted"])
    stats = two.stats()
    assert stats["links_not_admitted"] == 1
    assert stats["messages_not_admitted"] == 5 + 1       # the queued ones, then `send`
    assert stats["peers_admitted"] == 1
    assert nodes.got(2, 1) == [] and nodes.got(1, 2) == []
    assert [e["peer"] for e in logs if e["event"] == "link_closed_not_admitted"] == ["bram"]
    reasons = {e["reason"] for e in logs if e["event"] == "handshake_refused"}
    assert reasons == {"not admitted"}
    # the same from the side that dials: 0 stops admitting 1 and stops dialling it
    zero = nodes.transports[0]
    zero.admit([KEYS[0], KEYS[2]])
    assert 1 not in zero.connected()
    await nodes.until(lambda: 0 not in nodes.linked(1))
    await nodes.counted(lambda: 1 not in zero._dialers)     # its dial loop has ended
    assert 2 in zero._dialers
    # admitted again on both sides: the links come back and carry messages both ways
    zero.admit(KEYS[:3])
    two.admit(KEYS[:3])
    await nodes.until(lambda: all(nodes.linked(i) == {0, 1, 2} - {i} for i in (0, 1, 2)))
    await exchange(nodes, [(1, 2), (0, 1)], b"back")
    assert nodes.got(2, 1) == [b"from the left out", b"back 1 to 2"]  # 1's queue kept it


async def test_a_peer_left_out_during_its_handshake_gets_no_signature(nodes):
    two = await nodes.start(2, [0, 1, 2])
    initiator = Initiator(Roster(GENESIS, KEYS[:3]), 1, SEEDS[1], 2, os.urandom(32))
    reader, writer = await asyncio.open_connection(*nodes.addresses[2])
    writer.write(initiator.hello())
    async with asyncio.timeout(WAIT_S):
        challenge = await reader.readexactly(CHALLENGE_BYTES)
        two.admit([KEYS[0], KEYS[2]])       # between its HELLO and its PROOF
        writer.write(initiator.proof(challenge))
        assert await reader.read() == b"", "a REPLY signed for a peer left out"
    writer.close()
    assert two.connected() == set() and two.stats()["handshakes_refused"] == 1


async def test_admitted_keys_count_for_peers_added_later(nodes):
    one = await nodes.start(0, [0])
    one.admit([KEYS[0], KEYS[2]])                # 2 is not in the roster yet
    assert nodes.add(0, 1) == 1 and nodes.add(0, 2) == 2
    assert one.admitted() == {0, 2}
    one.send(1, b"dropped")
    one.broadcast(b"only to 2")
    assert one.queued(1) == (0, 0) and one.queued(2)[0] == 1
    assert one.stats()["messages_not_admitted"] == 1


async def test_a_peer_without_an_address_is_reached_by_its_own_dialling(nodes):
    # 0 dials 1 (the lower key): 1 needs no address of 0, and links all the same
    zero = await nodes.start(0, [0])
    one = await nodes.start(1, [1])
    with capture_logs() as logs:
        assert one.add_peer(KEYS[0], None, "anna") == 1
        assert one.add_peer(KEYS[0], None, None) == 1       # logged once
        nodes.add(0, 1)
        await nodes.until(lambda: nodes.linked(0) == {1} and nodes.linked(1) == {0})
    lines = [e for e in logs if e["event"] == "peer_without_address"]
    assert [(e["peer"], e["dialled_by_us"]) for e in lines] == [("anna", False)]
    await exchange(nodes, [(0, 1)], b"hi")
    assert zero.stats()["links_opened"] == 1


async def test_the_reserved_slots_are_for_the_admitted_peers_with_lower_keys(nodes):
    two = await nodes.start(2, [3, 2, 1, 0])
    for peer, ip in ((3, "10.0.0.3"), (1, "10.0.0.1"), (0, "10.0.0.0")):
        two.add_peer(KEYS[peer], (ip, 7000), None)
    assert two._peer_addresses.reserved == {"10.0.0.0", "10.0.0.1"}
    two.admit([KEYS[2], KEYS[3], KEYS[1]])
    assert two._peer_addresses.reserved == {"10.0.0.1"}
    # by default (no rule given) the lower indices, as before
    addresses = PeerAddresses(1, [("10.0.0.5", 1), ("10.0.0.6", 1), ("10.0.0.7", 1)])
    assert addresses.reserved == {"10.0.0.5"}


def test_the_roster_is_bounded():
    transport = Transport(0, SEEDS[0], [(KEYS[0], "127.0.0.1", 1)], GENESIS,
                          on_message=lambda peer, m: None)
    keys = [hashlib.sha256(b"extra %d" % k).digest() for k in range(MAX_ROSTER)]
    for k, key in enumerate(keys[:MAX_ROSTER - 1], start=1):
        assert transport.add_peer(key, ("127.0.0.1", 1000 + k), None) == k
    with pytest.raises(ValueError, match="full"):
        transport.add_peer(keys[-1], ("127.0.0.1", 999), "one too many")
    assert len(transport.roster.keys) == MAX_ROSTER and transport.index_of(keys[-1]) is None
    assert transport.add_peer(keys[5], None, "known") == 6      # a known key still answers
    with pytest.raises(ValueError):
        transport.admit(keys + [hashlib.sha256(b"one more").digest()])
    with pytest.raises(ValueError):
        Transport(0, SEEDS[0], [(KEYS[0], "127.0.0.1", 1)] + [
            (key, "127.0.0.1", 1) for key in keys], GENESIS, on_message=lambda p, m: None)


@pytest.mark.parametrize("key, address, name", [
    (bytes(31), ("127.0.0.1", 1), "short"),
    (bytes(33), ("127.0.0.1", 1), "long"),
    ("ab" * 32, ("127.0.0.1", 1), "hex text"),
    (None, ("127.0.0.1", 1), "none"),
    (bytes(32), ("127.0.0.1", 0), "port 0"),
    (bytes(32), ("127.0.0.1", 70000), "port too high"),
    (bytes(32), ("", 1), "no host"),
    (bytes(32), "127.0.0.1:1", "a string"),
    (bytes(32), ("127.0.0.1", 1), 7),
])
async def test_a_bad_argument_is_a_value_error_and_changes_nothing(key, address, name):
    transport = Transport(0, SEEDS[0], [(KEYS[0], "127.0.0.1", 1), (KEYS[1], "127.0.0.1", 2)],
                          GENESIS, on_message=lambda peer, m: None)
    before = (transport.roster, list(transport.names), transport.admitted(),
              transport.stats(), list(transport._addresses))
    with pytest.raises(ValueError):
        transport.add_peer(key, address, name)
    with pytest.raises(ValueError):
        transport.admit([KEYS[0], key if key != bytes(32) else b"x"])
    assert before == (transport.roster, list(transport.names), transport.admitted(),
                      transport.stats(), list(transport._addresses))
    assert transport.index_of(KEYS[1]) == 1 and transport.key_of(1) == KEYS[1]
    assert transport.index_of(b"\x00") is None and transport.index_of(bytes(32)) is None
    with pytest.raises(IndexError):
        transport.key_of(2)
    with pytest.raises(IndexError):
        transport.key_of(-1)
