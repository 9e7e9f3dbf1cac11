"""A fault-injecting TCP proxy between validators (asyncio), and its control.

One listening port per ordered pair of validators (A, B): A's `[peers]` entry for B
names it, so A reaches B through "link A->B". The transport keeps one connection per
pair (the lower index dials), so a connection carries both directions; the faults are
set per direction of the bytes: `Faults` of edge (A, B) apply to what A sends to B,
whichever side dialled. The proxy is transparent: it only copies bytes (the handshake
authenticates keys, never addresses, and every side still sees 127.0.0.1).

What it does to a stream is what a network can do to TCP, nothing else:
- latency with jitter: each chunk read from one side is written to the other after its
  one-way delay, never before an earlier chunk (TCP delivers in order);
- bandwidth: chunks leave one after another at `bandwidth` bytes a second;
- loss: TCP loses no bytes; a lost segment holds everything behind it until it is sent
  again (`stall_p`, one retransmission timeout `stall_ms`);
- a path that drops everything (`blocked`): bytes wait, and flow again once the path is
  open, at the next retransmission (timeouts from 200 ms, doubling). The other direction
  of the same connection delivers at most one window (`ACK_WINDOW`) while its
  acknowledgements cannot come back, then waits too. A new connection over a blocked
  path waits like a SYN that is dropped (retried 1 s, 3 s, 7 s, ... after it began).
  One difference a proxy cannot avoid: the dialler's connect() succeeds at once (the
  proxy accepts), so the wait counts against its handshake timeout (3 s), not its
  connect timeout (5 s);
- resets (`reset_per_s`): both ends get an RST; what was in flight is lost;
- a reconnect with late delivery (`late_per_s`): the path from one end stalls (its
  in-flight bytes pile up), then that end alone is reset (as a NAT or middlebox that
  drops a connection's state on one side does). The old bytes reach the other end late,
  on the old connection, which that end still believes open, and then it is reset too.
  When the reset end is the dialler it dials again meanwhile, so the old bytes arrive
  around and after the bytes of the new connection; either way the sender's
  application sends again what it had sent: duplicates and reordering across
  connections, never inside one.

With `events`, every connection accepted, connected, closed or reset and every change
of faults is written as a JSON line with the wall-clock time, to be read beside the
validators' logs.

`FaultProxy` runs in the caller's event loop; `ProxyProcess` runs one in a child
process (`python -m tests.faultnet.proxy`) so that its timing does not share an event
loop with the clients' load, and controls it with JSON lines over stdin/stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHUNK = 64 * 1024
HELD_MAX = 1024 * 1024          # bytes held per direction before reading pauses (the
                                # sender's socket buffer fills, as with a full window)
ACK_WINDOW = 64 * 1024          # delivered while the acknowledgements cannot return
FIRST_RTO_S = 0.2               # data retransmission: Linux's least RTO, doubling
FIRST_SYN_RTO_S = 1.0           # connection set-up retransmission, doubling
MAX_RTO_S = 60.0
CONNECT_TIMEOUT_S = 5.0
LINGER_ZERO = struct.pack("ii", 1, 0)     # SO_LINGER on, 0 s: close sends an RST


@dataclass(frozen=True)
class Faults:
    """What happens to the bytes of one direction of one pair (src -> dst)."""
    latency_ms: float = 0.0      # one-way delay
    jitter_ms: float = 0.0       # plus uniform 0..jitter_ms per chunk, still in order
    bandwidth: float = 0.0       # bytes a second, 0: unlimited
    blocked: bool = False        # the path drops everything
    stall_p: float = 0.0         # chance that a chunk is lost and sent again
    stall_ms: float = 200.0      # the retransmission timeout a loss costs
    reset_per_s: float = 0.0     # resets of the pair's connection (Poisson)
    late_per_s: float = 0.0      # reconnects with late delivery (Poisson), src reset
    late_stall_ms: tuple[float, float] = (100.0, 400.0)   # path stalled before the reset
    late_after_ms: tuple[float, float] = (20.0, 800.0)    # old bytes arrive this much later

    @classmethod
    def of(cls, raw: dict) -> "Faults":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**fixed)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def clean(self) -> bool:
        return self == Faults()


def retransmit_wait(elapsed_s: float, first_s: float) -> float:
    """Seconds from now to the next retransmission of something first sent `elapsed_s`
    ago, with timeouts of first_s, 2 first_s, ... (at most MAX_RTO_S)."""
    at, rto = first_s, first_s
    while at < elapsed_s:
        rto = min(2 * rto, MAX_RTO_S)
        at += rto
    return at - elapsed_s


class _Side:
    """One end of a proxied connection: the socket to one validator."""

    def __init__(self, name: str, reader: asyncio.StreamReader | None,
                 writer: asyncio.StreamWriter | None):
        self.name, self.reader, self.writer = name, reader, writer

    @property
    def open(self) -> bool:
        return self.writer is not None and not self.writer.transport.is_closing()

    def abort(self) -> None:
        """An RST: closing with a zero linger discards what is unsent and resets."""
        if self.writer is None:
            return
        transport = self.writer.transport
        sock = self.writer.get_extra_info("socket")
        if sock is not None and not transport.is_closing():
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            except OSError:
                pass
        transport.abort()


class _Pipe:
    """One direction of a connection: reads from `src`, writes to `dst` on schedule."""

    def __init__(self, conn: "_Conn", src: _Side, dst: _Side):
        self.conn, self.src, self.dst = conn, src, dst
        self.proxy = conn.proxy
        self.queue: collections.deque = collections.deque()   # (deliver_at, bytes|None)
        self.held = 0
        self.last_at = 0.0          # delivery times never go back: TCP is in order
        self.wire_free = 0.0        # when the link finishes sending what is queued
        self.stalled_at: float | None = None     # first held by a blocked path
        self.starved = 0            # delivered while the reverse path is blocked
        self.hold_until = 0.0       # nothing delivered before (a stall, late delivery)
        self.late = False           # src was reset: flush late, then reset dst
        self.data = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    @property
    def edge(self) -> tuple[str, str]:
        return self.src.name, self.dst.name

    def _enqueue(self, chunk: bytes | None) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        faults = self.proxy.faults(*self.edge)
        rng = self.proxy.rng
        size = len(chunk) if chunk else 0
        sent = now
        if faults.bandwidth > 0 and size:
            self.wire_free = max(now, self.wire_free) + size / faults.bandwidth
            sent = self.wire_free
        at = sent + (faults.latency_ms + rng.uniform(0, faults.jitter_ms)) / 1000
        if size and faults.stall_p and rng.random() < faults.stall_p:
            at += faults.stall_ms / 1000
            self.proxy.stats["stalls"] += 1
        at = max(at, self.last_at)
        self.last_at = at
        self.queue.append((at, chunk))
        self.held += size
        if self.held > HELD_MAX:
            self.room.clear()
        self.data.set()

    async def read_loop(self) -> None:
        reader = self.src.reader
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if self.late:
                    return
                self._enqueue(chunk)
                if not chunk:
                    return
                self.proxy.stats["bytes"] += len(chunk)
                await self.room.wait()
        except (ConnectionError, OSError):
            if not self.late:
                self._enqueue(None)     # reset: the other end is reset after the delay

    async def write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        while True:
            if not self.queue:
                if self.late:
                    break       # the old bytes are delivered: the other end is reset now
                self.data.clear()
                await self.data.wait()
                continue
            now = loop.time()
            at, chunk = self.queue[0]
            wait = max(at, self.hold_until) - now
            if wait > 0:
                await asyncio.sleep(wait)       # the delay is the fault; rechecked after
                continue
            forward, reverse = proxy.faults(*self.edge), proxy.faults(*reversed(self.edge))
            if forward.blocked or (reverse.blocked and self.starved >= ACK_WINDOW):
                if self.stalled_at is None:
                    self.stalled_at = now
                await proxy.changed()
                continue
            if self.stalled_at is not None:
                # the path is open again: the sender retransmits on its own schedule
                resume = now + retransmit_wait(now - self.stalled_at, FIRST_RTO_S)
                self.stalled_at = None
                self.hold_until = max(self.hold_until, resume)
                continue
            self.queue.popleft()
            if chunk is None:       # the source end was reset: so is this one
                self.dst.abort()
                break
            if not chunk:           # the source end closed: half-close this one
                if self.dst.open and self.dst.writer.can_write_eof():
                    try:
                        self.dst.writer.write_eof()
                    except (ConnectionError, OSError):
                        self.dst.abort()
                break
            self.starved = self.starved + len(chunk) if reverse.blocked else 0
            self.held -= len(chunk)
            if self.held <= HELD_MAX:
                self.room.set()
            if not self.dst.open:
                continue            # its end is gone: the bytes go nowhere
            self.dst.writer.write(chunk)
            try:
                await self.dst.writer.drain()
            except (ConnectionError, OSError):
                pass
        if self.late:
            self.dst.abort()


class _Conn:
    """One proxied connection from `dialer` to `listener`."""

    def __init__(self, proxy: "FaultProxy", dialer: str, listener: str,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proxy = proxy
        self.a = _Side(dialer, reader, writer)
        self.b = _Side(listener, None, None)
        self.up = _Pipe(self, self.a, self.b)      # dialer -> listener
        self.down: _Pipe | None = None             # listener -> dialer, once connected
        self.tasks: list[asyncio.Task] = []
        self.started = asyncio.get_running_loop().time()
        proxy.serial += 1
        self.id = proxy.serial

    @property
    def pair(self) -> frozenset:
        return frozenset((self.a.name, self.b.name))

    def pipe_from(self, name: str) -> _Pipe | None:
        return self.up if name == self.a.name else self.down

    def side(self, name: str) -> _Side:
        return self.a if name == self.a.name else self.b

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        reading = asyncio.create_task(self.up.read_loop())
        self.tasks.append(reading)
        try:
            # a connection set up over a blocked path waits as a dropped SYN does
            while proxy.path_blocked(self.a.name, self.b.name):
                if reading.done():
                    proxy.note("given_up", conn=self.id)
                    return      # the dialler gave up
                await proxy.changed_or_ended(reading)
                if not proxy.path_blocked(self.a.name, self.b.name):
                    elapsed = loop.time() - self.started
                    await asyncio.wait([reading],
                                       timeout=retransmit_wait(elapsed, FIRST_SYN_RTO_S))
            if reading.done():
                proxy.note("given_up", conn=self.id)
                return
            host, port = proxy.targets[self.b.name]
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError):
                proxy.stats["refused"] += 1
                proxy.note("refused", conn=self.id)
                return      # as the listener's RST: the dialler sees the connection end
            proxy.note("connected", conn=self.id)
            self.b.reader, self.b.writer = reader, writer
            self.down = _Pipe(self, self.b, self.a)
            self.tasks += [asyncio.create_task(self.up.write_loop()),
                           asyncio.create_task(self.down.read_loop()),
                           asyncio.create_task(self.down.write_loop())]
            writers = [self.tasks[1], self.tasks[3]]
            # a connection ends when both directions have ended (each ends at EOF or reset)
            await asyncio.gather(*writers, return_exceptions=True)
        finally:
            self.close()

    def close(self) -> None:
        if self in self.proxy.conns:
            self.proxy.note("closed", conn=self.id)
        for task in self.tasks:
            task.cancel()
        self.a.abort()
        self.b.abort()
        self.proxy.conns.discard(self)

    def reset(self) -> None:
        """An RST to both ends: whatever is in flight is lost."""
        self.proxy.stats["resets"] += 1
        self.proxy.note("reset", conn=self.id)
        self.close()

    async def late_reset(self, src: str, stall_s: float, late_s: float) -> None:
        """The path from `src` stalls, then `src`'s end alone is reset; the bytes it had in
        flight reach the other end `late_s` later, then that end is reset as well."""
        pipe = self.pipe_from(src)
        if pipe is None or pipe.late:
            return
        loop = asyncio.get_running_loop()
        self.proxy.stats["late"] += 1
        self.proxy.note("late_reset", conn=self.id, src=src, stall_s=round(stall_s, 3),
                        late_s=round(late_s, 3))
        pipe.hold_until = max(pipe.hold_until, loop.time() + stall_s)
        self.proxy.wake()
        await asyncio.sleep(stall_s)        # the stall itself: a fault, not a wait
        pipe.late = True
        other = self.pipe_from(self.b.name if src == self.a.name else self.a.name)
        if other is not None:
            other.late = True   # what the other end sends now reaches nobody
            other.queue.clear()
            other.data.set()
        self.side(src).abort()
        pipe.hold_until = loop.time() + late_s
        pipe.data.set()
        self.proxy.wake()


class FaultProxy:
    def __init__(self, targets: dict[str, tuple[str, int]], seed: int = 0,
                 host: str = "127.0.0.1", events=None):
        self.targets = dict(targets)        # name -> the validator's real peer address
        self.events = events                # a text file: one JSON line per event
        self.host = host
        self.rng = random.Random(seed)
        self.edges = {(a, b): Faults() for a in targets for b in targets if a != b}
        self.ports: dict[tuple[str, str], int] = {}
        self.conns: set[_Conn] = set()
        self.serial = 0
        self.stats = collections.Counter(connections=0, resets=0, late=0, stalls=0,
                                         refused=0, bytes=0)
        self._servers: list[asyncio.AbstractServer] = []
        self._changed = asyncio.Event()
        self._chaos: dict[tuple[str, str], asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._handlers: set[asyncio.Task] = set()

    # ---- set-up -------------------------------------------------------------------------

    async def start(self) -> dict[tuple[str, str], int]:
        for dialer, listener in self.edges:
            server = await asyncio.start_server(
                lambda r, w, d=dialer, l=listener: self._accept(d, l, r, w),
                self.host, 0)
            self._servers.append(server)
            self.ports[(dialer, listener)] = server.sockets[0].getsockname()[1]
        return self.ports

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._chaos.values()) + list(self._tasks):
            task.cancel()
        for conn in list(self.conns):
            conn.close()
        # each connection's handler ends once its pipes are cancelled
        await asyncio.gather(*self._handlers, *self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def _accept(self, dialer: str, listener: str, reader, writer) -> None:
        conn = _Conn(self, dialer, listener, reader, writer)
        self.conns.add(conn)
        self.stats["connections"] += 1
        self.note("accepted", conn=conn.id, dialer=dialer, listener=listener,
                  held=self.path_blocked(dialer, listener))
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            await conn.run()
        finally:
            self._handlers.discard(task)

    def note(self, event: str, **fields) -> None:
        """One line in the event log, when there is one (wall clock, as the validators'
        logs, so the two can be read side by side)."""
        if self.events is not None:
            fields.update(t=round(time.time(), 4), event=event)
            self.events.write(json.dumps(fields) + "\n")
            self.events.flush()

    # ---- faults -------------------------------------------------------------------------

    def faults(self, src: str, dst: str) -> Faults:
        return self.edges[(src, dst)]

    def path_blocked(self, a: str, b: str) -> bool:
        return self.edges[(a, b)].blocked or self.edges[(b, a)].blocked

    def wake(self) -> None:
        """Tells every waiting pipe that something changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Waits until the faults change."""
        await self._changed.wait()

    async def changed_or_ended(self, task: asyncio.Task) -> None:
        """Waits until the faults change or `task` ends."""
        change = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait([change, task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()

    def set(self, edges, **changes) -> None:
        """Changes the named faults of each (src, dst) edge; the others stay."""
        for edge in edges:
            edge = tuple(edge)
            self.edges[edge] = dataclasses.replace(self.edges[edge], **changes)
            self._restart_chaos(edge)
        self.note("set", edges=[list(e) for e in edges], **changes)
        self.wake()

    def heal(self) -> None:
        for edge in self.edges:
            self.edges[edge] = Faults()
            self._restart_chaos(edge)
        self.note("heal")
        self.wake()

    def reset(self, edges) -> int:
        """Resets the connections of the pairs named now; how many."""
        pairs = {frozenset(e) for e in edges}
        found = [c for c in self.conns if c.pair in pairs]
        for conn in found:
            conn.reset()
        self.note("reset", edges=[list(e) for e in edges], connections=len(found))
        return len(found)

    def _restart_chaos(self, edge: tuple[str, str]) -> None:
        old = self._chaos.pop(edge, None)
        if old is not None:
            old.cancel()
        faults = self.edges[edge]
        if faults.reset_per_s > 0 or faults.late_per_s > 0:
            self._chaos[edge] = asyncio.create_task(self._chaos_loop(edge, faults))

    async def _chaos_loop(self, edge: tuple[str, str], faults: Faults) -> None:
        """Resets and late reconnects on `edge` at random (Poisson) moments."""
        rate = faults.reset_per_s + faults.late_per_s
        src, dst = edge
        while True:
            await asyncio.sleep(self.rng.expovariate(rate))    # the fault's own schedule
            conns = [c for c in self.conns if c.pair == frozenset(edge) and c.down]
            if not conns:
                continue
            conn = self.rng.choice(conns)
            if self.rng.random() * rate < faults.reset_per_s:
                conn.reset()
            else:
                stall = self.rng.uniform(*faults.late_stall_ms) / 1000
                late = self.rng.uniform(*faults.late_after_ms) / 1000
                task = asyncio.create_task(conn.late_reset(src, stall, late))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # ---- control ------------------------------------------------------------------------

    def command(self, message: dict) -> dict:
        """One control command (the JSON-lines protocol of ProxyProcess)."""
        op = message.get("op")
        if op == "set":
            changes = Faults.of(message.get("faults", {})).as_dict()
            given = {k: changes[k] for k in message.get("faults", {})}
            self.set([tuple(e) for e in message["edges"]], **given)
            return {"ok": True}
        if op == "heal":
            self.heal()
            return {"ok": True}
        if op == "reset":
            return {"ok": True, "reset": self.reset([tuple(e) for e in message["edges"]])}
        if op == "stats":
            return {"ok": True, "stats": dict(self.stats), "open": len(self.conns),
                    "faulty": [[*e, f.as_dict()] for e, f in self.edges.items()
                               if not f.clean]}
        return {"ok": False, "error": f"unknown op {op!r}"}


# ---- in a process of its own -----------------------------------------------------------

def edge_key(src: str, dst: str) -> str:
    return f"{src}>{dst}"


class ProxyProcess:
    """A FaultProxy in a child process, controlled over its stdin and stdout. The child
    ends when its stdin closes, so it never outlives the process that started it."""

    def __init__(self, targets: dict[str, tuple[str, int]], seed: int = 0,
                 events: str | None = None):
        self.targets, self.seed, self.events = targets, seed, events
        self.ports: dict[tuple[str, str], int] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> dict[tuple[str, str], int]:
        spec = json.dumps({n: f"{h}:{p}" for n, (h, p) in self.targets.items()})
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.faultnet.proxy", "--targets", spec,
            "--seed", str(self.seed), *(["--events", self.events] if self.events else []),
            cwd=REPO, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024)
        async with asyncio.timeout(30):
            line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError("the proxy process ended before it listened")
        ports = json.loads(line)["ports"]
        self.ports = {tuple(k.split(">")): v for k, v in ports.items()}
        return self.ports

    async def call(self, message: dict) -> dict:
        # shielded: a caller cancelled half way must not leave an answer unread, which
        # the next call would take for its own
        answer = await asyncio.shield(self._exchange(message))
        if not answer.get("ok"):
            raise RuntimeError(f"proxy: {answer}")
        return answer

    async def _exchange(self, message: dict) -> dict:
        async with self._lock:
            self._process.stdin.write(json.dumps(message).encode() + b"\n")
            await self._process.stdin.drain()
            async with asyncio.timeout(30):
                line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError("the proxy process ended")
        return json.loads(line)

    async def set(self, edges, **faults) -> None:
        await self.call({"op": "set", "edges": [list(e) for e in edges], "faults": faults})

    async def heal(self) -> None:
        await self.call({"op": "heal"})

    async def reset(self, edges) -> int:
        return (await self.call({"op": "reset", "edges": [list(e) for e in edges]}))["reset"]

    async def stats(self) -> dict:
        return await self.call({"op": "stats"})

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            self._process.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await self._process.wait()
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._process = None


async def _serve(targets: dict[str, tuple[str, int]], seed: int,
                 events_path: str | None) -> None:
    events = open(events_path, "a") if events_path else None
    proxy = FaultProxy(targets, seed, events=events)
    ports = await proxy.start()
    print(json.dumps({"ports": {edge_key(*e): p for e, p in ports.items()}}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break       # the controlling process is gone
            try:
                answer = proxy.command(json.loads(line))
            except (ValueError, KeyError, TypeError) as error:
                answer = {"ok": False, "error": str(error)}
            print(json.dumps(answer), flush=True)
    finally:
        await proxy.stop()
        if events is not None:
            events.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faultnet.proxy")
    parser.add_argument("--targets", required=True,
                        help='JSON {"name": "host:port", ...}: the validators\' peer ports')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--events", help="append one JSON line per event to this file")
    args = parser.parse_args(argv)
    targets = {}
    for name, address in json.loads(args.targets).items():
        host, _, port = address.rpartition(":")
        targets[name] = (host, int(port))
    asyncio.run(_serve(targets, args.seed, args.events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
