"""How fast one validator link carries messages on loopback: frames and MB per second.

    .venv/bin/python -m bench.transport_link [--seconds S] [--sizes 100,1024,65536]

Two validators run in two processes (sender and receiver each get a core, as on two
machines); the sender keeps its queue for the receiver half full, so nothing is dropped
and what is measured is the link itself: framing, encryption, the socket, decryption
and delivery. Prints one line per message size. `--burst 1` queues one message per
loop iteration, so every message is a frame of its own: the worst case of coalescing.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import structlog  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from node.transport import Transport, TransportLimits  # noqa: E402

GENESIS = hashlib.sha256(b"transport benchmark").digest()
SEEDS = [hashlib.sha256(b"bench validator %d" % i).digest() for i in range(2)]
LIMITS = TransportLimits()


def validators(ports: list[int]) -> list[tuple[bytes, str, int]]:
    return [(bytes(SigningKey(seed).verify_key), "127.0.0.1", port)
            for seed, port in zip(SEEDS, ports)]


def free_ports(count: int) -> list[int]:
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


async def receive(ports: list[int], size: int, results) -> None:
    done = asyncio.Event()
    stop_marker = b"stop"
    state = {"messages": 0, "first": 0.0, "last": 0.0}

    def on_message(peer: int, message: bytes) -> None:
        if message == stop_marker:
            done.set()
            return
        if state["messages"] == 0:
            state["first"] = time.perf_counter()
        state["messages"] += 1
        state["last"] = time.perf_counter()

    transport = Transport(1, SEEDS[1], validators(ports), GENESIS, on_message, LIMITS)
    await transport.start()
    await done.wait()
    stats = transport.stats()
    await transport.stop()
    results.put((state["messages"], state["last"] - state["first"], stats["frames_received"]))


def receiver_process(ports: list[int], size: int, results) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(receive(ports, size, results))


async def send(ports: list[int], size: int, seconds: float, burst: int) -> dict:
    transport = Transport(0, SEEDS[0], validators(ports), GENESIS, lambda p, m: None, LIMITS)
    await transport.start()
    while 1 not in transport.connected():
        await asyncio.sleep(0.01)
    message = os.urandom(size)
    burst = burst or max(1, min(1000, (LIMITS.max_queue_bytes // 8) // (size + 4)))
    half = LIMITS.max_queue_bytes // 2
    sent = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if transport.queued(1)[1] < half:
            for _ in range(burst):
                transport.send(1, message)
            sent += burst
        # lets the writer run; a benchmark may poll, the product never does
        await asyncio.sleep(0 if transport.queued(1)[1] < half else 0.0005)
    transport.send(1, b"stop")
    while transport.queued(1)[0]:
        await asyncio.sleep(0.001)
    stats = transport.stats()
    stats["sent"] = sent
    # the receiver hangs up once it has everything; stop after that
    while 1 in transport.connected():
        await asyncio.sleep(0.01)
    await transport.stop()
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--sizes", default="100,1024,65536")
    parser.add_argument("--burst", type=int, default=0,
                        help="messages queued per loop iteration (default: up to 1,000); "
                             "1 shows the cost of a frame per message")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    context = multiprocessing.get_context("spawn")
    print(f"{'message bytes':>13} {'messages/s':>12} {'MB/s':>8} {'frames/s':>9} "
          f"{'dropped':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        ports = free_ports(2)
        results = context.Queue()
        child = context.Process(target=receiver_process, args=(ports, size, results))
        child.start()
        stats = asyncio.run(send(ports, size, args.seconds, args.burst))
        messages, elapsed_s, frames = results.get(timeout=60)
        child.join(timeout=10)
        assert messages == stats["sent"] - stats["messages_dropped"]
        print(f"{size:>13} {messages / elapsed_s:>12,.0f} "
              f"{messages * size / elapsed_s / 1e6:>8.1f} {frames / elapsed_s:>9,.0f} "
              f"{stats['messages_dropped']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
