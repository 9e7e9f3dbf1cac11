"""Who may take part: an outsider cannot join, a peer that sends garbage or oversized
frames is cut off, a frozen validator stalls nobody; the others carry on each time."""
from __future__ import annotations

import asyncio
import os
import struct
import time

from netharness import Load, run_cli
from node import genesis as genesis_file, keys
from node.frames import HEADER, Sealer, pack_messages
from node.handshake import HELLO_BYTES, Initiator, Roster, initiate

LIMIT_S = 10.0  # how long a validator may take to drop a connection it must drop


async def _dropped(reader: asyncio.StreamReader) -> bytes:
    """Reads until the validator closes the connection; returns what it sent before."""
    received = b""
    async with asyncio.timeout(LIMIT_S):
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


async def _commits_go_on(net, count=40):
    load = Load(net, clients=8)
    load.start()
    await load.wait_committed(count)
    await load.stop()
    assert not load.rejected, load.rejected


def _roster(net) -> Roster:
    genesis = genesis_file.load(net.root / "genesis.json")
    return Roster(genesis.hash(), tuple(genesis.validator_keys()))


def _lowest_key(net) -> str:
    """The validator that dials every other (the lower key of a pair dials), so it can
    reach every peer's listener."""
    keys = _roster(net).keys
    return net.names[min(range(len(keys)), key=keys.__getitem__)]


async def test_a_node_with_a_key_outside_genesis_is_refused(network, tmp_path):
    net = await network(4)
    outsider = keys.Keypair.generate()
    # the node's own start refuses a key that genesis does not name
    folder = net.root / "vng"
    (folder / "validator.key").unlink()
    keys.write_key_file(folder / "validator.key", outsider)
    done = run_cli("node", "run", str(folder))
    assert done.returncode == 1
    assert "not a validator of the genesis" in done.stderr
    # a modified node that skips that check is refused by every validator at the
    # handshake: it gets no reply (so no signature) and the connection is closed
    roster = _roster(net)
    forged = Roster(roster.genesis_hash, (outsider.public,) + roster.keys[1:])
    for peer, name in enumerate(net.names[1:], start=1):
        reader, writer = await asyncio.open_connection("127.0.0.1", net.peer_ports[name])
        initiator = Initiator(forged, 0, outsider.seed, peer, os.urandom(32))
        writer.write(initiator.hello())
        assert await _dropped(reader) == b"", f"{name} answered an outsider"
        writer.close()
    await _commits_go_on(net)
    statuses = await net.statuses()
    assert all(all(v["connected"] for v in s["validators"]) for s in statuses.values())


async def test_garbage_before_the_handshake_is_disconnected_and_the_others_carry_on(
        network):
    net = await network(4)
    for name in net.names:
        reader, writer = await asyncio.open_connection("127.0.0.1", net.peer_ports[name])
        writer.write(os.urandom(HELLO_BYTES))
        assert await _dropped(reader) == b"", f"{name} answered garbage"
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", net.peer_ports[name])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 1000)
        await _dropped(reader)
        writer.close()
    await _commits_go_on(net)


async def _link_as(net, me: str, peer: str):
    """An authenticated link to `peer` made with the real key of validator `me`, which the
    test plays instead of running it (a validator gone bad)."""
    roster = _roster(net)
    seed = keys.read_key_file(net.root / me / "validator.key").seed
    reader, writer = await asyncio.open_connection("127.0.0.1", net.peer_ports[peer])
    initiator = Initiator(roster, net.names.index(me), seed, net.names.index(peer),
                          os.urandom(32))
    session = await initiate(reader, writer, initiator, LIMIT_S)
    return reader, writer, Sealer(session.send_key)


async def test_a_validator_sending_oversized_or_forged_frames_is_disconnected(network):
    net = await network(4, start=False)
    bad = _lowest_key(net)
    others = [name for name in net.names if name != bad]
    for name in others:
        net.start(name)
    await net.wait_ready(others)
    for name in others:
        # a header announcing more than the frame limit (8 MiB by default)
        reader, writer, _ = await _link_as(net, bad, name)
        writer.write(HEADER.pack(8 * 1024 * 1024 + 1) + os.urandom(1024))
        await _dropped(reader)
        writer.close()
        # a frame of the right shape whose bytes do not authenticate
        reader, writer, _ = await _link_as(net, bad, name)
        writer.write(HEADER.pack(200) + os.urandom(200))
        await _dropped(reader)
        writer.close()
        # a properly sealed frame whose message lengths run past its end
        reader, writer, sealer = await _link_as(net, bad, name)
        writer.write(sealer.seal(struct.pack(">I", 10_000) + b"short"))
        await _dropped(reader)
        writer.close()
    for name in others:
        reasons = [e["reason"] for e in net.log_events(name, "link_down") if e["peer"] == bad]
        assert len(reasons) == 3 and "over the limit" in reasons[0], reasons
        assert reasons[1:] == ["frame does not authenticate",
                               "message runs past the end of its frame"], reasons
    # the three honest ones still make a quorum and go on (after a view change when the
    # primary of view 0 is the one gone bad)
    await _commits_go_on(net)
    if bad == net.names[0]:
        for s in (await net.statuses()).values():
            assert s["view"] > 0


async def test_sealed_garbage_messages_from_a_validator_change_nothing(network):
    net = await network(4, start=False)
    bad = _lowest_key(net)
    others = [name for name in net.names if name != bad]
    for name in others:
        net.start(name)
    await net.wait_ready(others)
    await _commits_go_on(net, 20)
    before = await net.heights()
    links = []
    for name in others:
        reader, writer, sealer = await _link_as(net, bad, name)
        junk = [b"", b"\x01" + os.urandom(300), b"\x02\x92\x05\x01", b"\x03\xc1",
                b"\x09hello", b"\x02" + b"\x91" * 5000]
        writer.write(sealer.seal(pack_messages(junk)))
        await writer.drain()
        links.append((reader, writer))
    await _commits_go_on(net, 20)
    after = await net.heights()
    assert all(after[n] > before[n] for n in before)
    for name in others:
        # logged sampled: the first with its reason, then one summary line with the
        # count at the end of the interval (10 s), never a line per bad message
        deadline = time.monotonic() + 30
        while not [e for e in net.log_events(name, "bad_peer_input") if e.get("summary")]:
            assert time.monotonic() < deadline, "no summary of the bad messages"
            await asyncio.sleep(0.2)
        lines = net.log_events(name, "bad_peer_input")
        assert len(lines) == 2 and lines[0]["peer"] == bad
        assert lines[1]["summary"] and lines[1]["count"] == len(junk)
        assert not [e for e in net.log_events(name, "link_down") if e["peer"] == bad]
    for _, writer in links:
        writer.close()


async def test_a_frozen_validator_stalls_nobody_and_catches_up_after_sigcont(network):
    net = await network(4)
    load = Load(net, clients=16)
    load.start()
    await load.wait_committed(60)
    frozen = net.names[2]
    net.freeze(frozen)
    held = (await net.status(net.names[0]))["height"]
    await load.wait_committed(len(load.committed) + 200)
    others = await net.heights()
    assert all(h > held for h in others.values())
    await load.stop()
    net.thaw(frozen)
    top = await net.wait_caught_up(net.names, timeout_s=60)
    await net.assert_same_blocks(net.names, top)
