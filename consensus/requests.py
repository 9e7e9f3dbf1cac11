"""The requests a replica waits on, shared fairly among the clients that send them.

Pending: every request waiting to be ordered, with its arrival tick for the view-change
timer. Queued: those pending and in no pre-prepare of this view, which a primary may
propose. Keys once ordered are remembered, up to `seen_limit`, so that a correct primary
never orders a key twice.

The fairness rule (a flooder fills its own share, not everyone's):

1. Room. A client (`Request.client`, opaque here: the node puts the signer's key there)
   holds at most `client_pending_limit` pending requests; one more is refused like one
   for a full pool (`add` answers False, the caller answers "overloaded").
2. Rounds. A queued request sits in a round. A client's first queued request goes in
   the current round, the lowest one that still holds a queued request, or in the next
   one if a request the client still has pending was taken from the current round;
   each further one goes in the round after its previous one. So a client has at most
   one pending request per round, in its arrival order. (A client with nothing pending
   starts afresh: one that sends a request only once the last is ordered may be served
   in each batch of a round longer than a batch, at the pace of its commits.)
3. Batches. A primary's batch takes queued requests round by round, in arrival order
   within a round, until `batch_max_count` or `batch_max_bytes`. With k clients waiting,
   a batch takes one request from each in turn; a client with 90,000 requests queued
   gets one per round like everyone else, and a request of a client with nothing queued
   waits behind at most one request of each other client (two, if its client had one
   taken from the current round).
4. A new view puts every pending request back in the queue: rounds are dealt again from
   the pending requests in arrival order, as if each had just arrived in that order.

Batch content is a function of the calls made on the pool and nothing else: dicts and
deques in insertion order, no set is iterated, no hash order matters. Every operation
costs O(1) amortised per request: a request taken out of the queue leaves its entry in
its round, and one that leaves the pool its place in `arrivals` (where the oldest is
found), each found stale by its number and dropped when it reaches the front or when
stale ones outnumber live ones (then all at once). (A dict whose front entries are
deleted again and again makes whoever reads its front walk the holes left there until
it is resized: the pool once paid for that with every transaction of a long run. Only
`stale_payloads`, the replica's re-forwarding, reads the front of `queue`, every half
request timeout.)
"""
from __future__ import annotations

from collections import deque
from typing import Iterator, Sequence

from consensus.api import Request
from consensus.config import Config

# stale round entries tolerated beyond the number of live ones before a sweep
SWEEP_SLACK = 64


class _Client:
    """What the pool knows of one client while it has a request pending."""
    __slots__ = ("held", "queued", "last", "served")

    def __init__(self) -> None:
        self.held = 0       # pending requests (queued or in a pre-prepare)
        self.queued = 0     # of which queued
        self.last = -1      # the round of its latest queued request (may have left)
        self.served = 0     # its requests ordered since it had one pending


class RequestPool:
    def __init__(self, config: Config, ordered_keys: Sequence[bytes] = ()):
        self.config = config
        # key -> (request, arrival tick, arrival number)
        self.pending: dict[bytes, tuple[Request, int, int]] = {}
        # (arrival number, key), oldest first; stale once its request is not pending
        self.arrivals: deque[tuple[int, bytes]] = deque()
        self.queue: dict[bytes, Request] = {}     # queued, in arrival order
        self.in_flight: set[bytes] = set()
        # keys ordered, oldest first: a set to ask and a queue to forget the oldest. (A dict
        # that drops its first key again and again scans the holes left in front of it:
        # at the limit that cost grew with every transaction of a long run.)
        kept = list(dict.fromkeys(ordered_keys[-config.seen_limit:]))
        self.seen: set[bytes] = set(kept)
        self.seen_order: deque[bytes] = deque(kept)
        self.clients: dict[bytes, _Client] = {}   # clients with a request pending
        # round -> (sequence number, request) in arrival order; an entry is live while
        # placed[key] is its sequence number, stale once its request left the queue
        self.rounds: dict[int, deque[tuple[int, Request]]] = {}
        self.placed: dict[bytes, int] = {}        # queued key -> its live entry's number
        self.entries = 0                          # entries in rounds, live and stale
        self.round = 0                            # the lowest round with a live entry
        self.top = -1                             # the highest round dealt
        self.sequence = 0

    def __len__(self) -> int:
        return len(self.pending)

    # ---- in ----------------------------------------------------------------------------

    def add(self, request: Request, tick: int) -> bool:
        """False when the key is known (ordered or pending), the pool is full or the
        client holds its share."""
        key = request.key
        if key in self.seen or key in self.pending:
            return False
        if len(self.pending) >= self.config.pending_limit:
            return False
        client = self.clients.get(request.client)
        if client is None:
            client = self.clients[request.client] = _Client()
        elif client.held >= self.config.client_pending_limit:
            return False
        client.held += 1
        self.sequence += 1
        self.pending[key] = (request, tick, self.sequence)
        self.arrivals.append((self.sequence, key))
        if key not in self.in_flight:
            self._enqueue(request, client)
        return True

    def knows(self, key: bytes) -> bool:
        """Whether `add` would refuse this key as known (rather than for lack of room)."""
        return key in self.pending or key in self.seen

    def held_by(self, client: bytes) -> int:
        found = self.clients.get(client)
        return 0 if found is None else found.held

    # ---- what waits ----------------------------------------------------------------------

    def _oldest(self) -> tuple[Request, int, int] | None:
        """The oldest pending request, found from the front of `arrivals` (stale entries
        there are dropped once: the front of `pending` may hide many holes)."""
        arrivals, pending = self.arrivals, self.pending
        while arrivals:
            number, key = arrivals[0]
            found = pending.get(key)
            if found is not None and found[2] == number:
                return found
            arrivals.popleft()
        return None

    def oldest_arrival(self) -> int | None:
        oldest = self._oldest()
        return None if oldest is None else oldest[1]

    def oldest_mark(self) -> tuple[bytes, int] | None:
        """The oldest pending request's key and how many requests of its client were
        ordered meanwhile: what a censorship timer should watch under fair batching. A
        correct primary orders a request of every client that has one queued in each
        round, so a client whose requests keep being ordered is served, not censored,
        even while requests of others that came later overtake its oldest one (they
        are in earlier rounds at the primary). The mark changes when either changes."""
        oldest = self._oldest()
        if oldest is None:
            return None
        return oldest[0].key, self.clients[oldest[0].client].served

    def newest_arrival(self, requests: Sequence[Request]) -> int | None:
        """The latest arrival tick among those of `requests` that are pending here."""
        ticks = [self.pending[r.key][1] for r in requests if r.key in self.pending]
        return max(ticks, default=None)

    def stale_payloads(self, arrived_by: int, limit: int) -> list[bytes]:
        """The envelopes of the queued requests that arrived at or before tick
        `arrived_by`, at most `limit`, in queue (arrival) order, stopping at the first
        later one: what a backup forwards again. Reads the front of the queue only."""
        payloads: list[bytes] = []
        pending = self.pending
        for request in self.queue.values():
            if pending[request.key][1] > arrived_by or len(payloads) == limit:
                break
            payloads.append(request.payload)
        return payloads

    def handover(self) -> tuple[list[bytes], list[Request]]:
        """What the next validator set's replica takes over: the keys ordered, oldest
        first, and the requests still waiting, in arrival order."""
        waiting = sorted(self.pending.values(), key=lambda entry: entry[2])
        return list(self.seen_order), [request for request, _, _ in waiting]

    def waiting(self) -> Iterator[Request]:
        """The queued requests in the order batches take them (rule 3): round by round,
        in arrival order within a round. Lazy: a batch reads only what it takes."""
        self._advance()
        placed = self.placed
        for number in range(self.round, self.top + 1):
            for sequence, request in self.rounds.get(number, ()):
                if placed.get(request.key) == sequence:
                    yield request

    def next_batch(self) -> tuple[list[Request], int, bool]:
        """The next batch from the queue within the limits, the arrival tick of its
        oldest request, and whether it is full (so it should not wait for more).
        Takes nothing out of the queue: `proposed` does, once it is proposed."""
        config = self.config
        batch: list[Request] = []
        size, oldest = 0, None
        pending = self.pending
        for request in self.waiting():
            if len(batch) == config.batch_max_count or \
                    (batch and size + len(request.payload) > config.batch_max_bytes):
                return batch, oldest, True
            batch.append(request)
            size += len(request.payload)
            tick = pending[request.key][1]
            if oldest is None or tick < oldest:
                oldest = tick
        if not batch:
            return batch, 0, False
        return batch, oldest, len(batch) == config.batch_max_count

    # ---- out ---------------------------------------------------------------------------

    def proposed(self, requests: Sequence[Request], tick: int) -> None:
        """Requests in a pre-prepare of this view: waited on, not proposed again."""
        for request in requests:
            self.in_flight.add(request.key)
            self._unqueue(request.key)
            self.add(request, tick)
        self._tidy()

    def ordered(self, requests: Sequence[Request]) -> None:
        for request in requests:
            key = request.key
            self._unqueue(key)
            client = self.clients.get(request.client)
            if client is not None:
                client.served += 1
            found = self.pending.pop(key, None)
            if found is not None:
                self._release(found[0].client)
            self.in_flight.discard(key)
            if key not in self.seen:
                self.seen.add(key)
                self.seen_order.append(key)
                if len(self.seen_order) > self.config.seen_limit:
                    self.seen.discard(self.seen_order.popleft())
        self._tidy()

    def new_view(self) -> None:
        """Pre-prepares of the old view are void: everything pending may be proposed, in
        rounds dealt again in arrival order (rule 4)."""
        self.in_flight = set()
        self.queue, self.placed, self.rounds = {}, {}, {}
        self.entries, self.round, self.top = 0, 0, -1
        for client in self.clients.values():
            client.queued, client.last = 0, -1
        for request, _, _ in self.pending.values():
            self._enqueue(request, self.clients[request.client])

    # ---- the rounds ----------------------------------------------------------------------

    def _enqueue(self, request: Request, client: _Client) -> None:
        """Deals a request its round (rule 2)."""
        if client.queued:
            number = client.last + 1
        elif client.last < self.round:
            number = self.round
        else:       # it had one taken from this round (or, after a backup's step, later)
            number = self.round + 1
        self.sequence += 1
        entries = self.rounds.get(number)
        if entries is None:
            entries = self.rounds[number] = deque()
        entries.append((self.sequence, request))
        self.entries += 1
        self.placed[request.key] = self.sequence
        self.queue[request.key] = request
        client.queued += 1
        client.last = number
        if number > self.top:
            self.top = number

    def _unqueue(self, key: bytes) -> None:
        """Out of the queue; its round entry goes stale."""
        request = self.queue.pop(key, None)
        if request is None:
            return
        del self.placed[key]
        self.clients[request.client].queued -= 1

    def _release(self, client_name: bytes) -> None:
        client = self.clients[client_name]
        client.held -= 1
        if not client.held:
            assert not client.queued
            del self.clients[client_name]

    def _advance(self) -> None:
        """Moves the current round up to the lowest live entry, dropping stale entries
        and rounds on the way: each entry and each round number is passed once."""
        rounds, placed = self.rounds, self.placed
        while self.round <= self.top:
            entries = rounds.get(self.round)
            if entries is not None:
                while entries and placed.get(entries[0][1].key) != entries[0][0]:
                    entries.popleft()
                    self.entries -= 1
                if entries:
                    return
                del rounds[self.round]
            self.round += 1

    def _tidy(self) -> None:
        self._oldest()
        if len(self.arrivals) > 2 * len(self.pending) + SWEEP_SLACK:
            pending = self.pending
            self.arrivals = deque(a for a in self.arrivals
                                  if (found := pending.get(a[1])) is not None
                                  and found[2] == a[0])
        self._advance()
        if self.entries - len(self.queue) > len(self.queue) + SWEEP_SLACK:
            placed = self.placed
            for number in list(self.rounds):
                live = deque(e for e in self.rounds[number] if placed.get(e[1].key) == e[0])
                if live:
                    self.rounds[number] = live
                else:
                    del self.rounds[number]
            self.entries = len(self.queue)

    # ---- invariants ----------------------------------------------------------------------

    def check(self) -> None:
        """Constant time, after every step of the replica."""
        config = self.config
        assert len(self.pending) <= config.pending_limit
        assert len(self.seen) == len(self.seen_order) <= config.seen_limit
        assert len(self.queue) == len(self.placed) <= len(self.pending)
        assert len(self.clients) <= len(self.pending) <= len(self.arrivals)
        assert len(self.arrivals) <= 2 * len(self.pending) + SWEEP_SLACK
        assert len(self.queue) <= self.entries <= 2 * len(self.queue) + SWEEP_SLACK
        assert len(self.rounds) <= self.entries
        assert self.round <= self.top + 1

    def audit(self) -> None:
        """Every invariant, walking everything (tests): the client counts are right and
        within the share, each queued request has exactly one live entry, a client has
        at most one per round and its rounds follow its arrival order."""
        self.check()
        held: dict[bytes, int] = {}
        queued: dict[bytes, int] = {}
        live_arrivals = [key for number, key in self.arrivals
                         if key in self.pending and self.pending[key][2] == number]
        assert live_arrivals == list(self.pending)
        for key, (request, _, _) in self.pending.items():
            assert request.key == key
            held[request.client] = held.get(request.client, 0) + 1
        for key, request in self.queue.items():
            assert key in self.pending and key not in self.in_flight
            queued[request.client] = queued.get(request.client, 0) + 1
        assert set(self.clients) == set(held)
        for name, client in self.clients.items():
            assert client.held == held[name] <= self.config.client_pending_limit
            assert client.queued == queued.get(name, 0)
        live: dict[bytes, int] = {}
        entries = 0
        for number, found in self.rounds.items():
            assert found and self.round <= number <= self.top
            entries += len(found)
            in_round: set[bytes] = set()
            for sequence, request in found:
                if self.placed.get(request.key) == sequence:
                    assert request.key not in live and request.client not in in_round
                    live[request.key] = number
                    in_round.add(request.client)
        assert entries == self.entries and live.keys() == self.queue.keys()
        last: dict[bytes, int] = {}
        for key, request in self.queue.items():      # arrival order
            assert live[key] > last.get(request.client, -1)
            last[request.client] = live[key]
        if self.queue:
            assert self.round in self.rounds
