"""Rate limits of the peer port (node/listener.py): a token bucket, the handshake rates
made of them, and a log that says each kind of line at most twice per interval.

- `Bucket` runs on the event loop's clock (the caller passes `now`): `burst` tokens at
  once, refilled at `rate` a second.
- `HandshakeRates` holds the buckets of the public-key work the listener does: a
  CHALLENGE to a HELLO that claims a validator from an address that is not that
  validator's, per address (the IP_BUCKETS most recent) and over all such addresses; a
  signed REPLY, per proven validator (one bucket per roster member, `add` for a
  validator added at run time).
- `SampledLog` logs refused, evicted and failed handshakes, accept errors and peer input
  the receiver refused: the first of each kind in a `log_interval_s` interval as it
  happens, then one line with the count. Never a line (or traceback) per attempt. At most
  LOG_KINDS kinds are kept apart per interval, and LOG_SOURCES addresses per kind.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Iterable

import structlog

if TYPE_CHECKING:
    from node.transport import TransportLimits

log = structlog.get_logger("stadsmunt.transport")

LOG_KINDS = 64              # kinds of sampled log line per interval; the rest count as one
LOG_SOURCES = 1024          # addresses counted per kind per interval
IP_BUCKETS = 4096           # addresses whose handshake rate is remembered (least recent go)


class Bucket:
    """A token bucket on the event loop's clock."""
    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst, self.tokens, self.at = rate, burst, float(burst), now

    def ready(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens >= 1

    def take(self) -> None:
        self.tokens -= 1


class HandshakeRates:
    """The token buckets of the listener's public-key work, on the event loop's clock.
    Each method says whether the work may be done now, and takes its tokens if so."""

    def __init__(self, limits: TransportLimits, peers: Iterable[int], now: float):
        self._ip_rate = limits.ip_handshake_rate
        self._ip_burst = limits.ip_handshake_burst
        self._by_ip: OrderedDict[str, Bucket] = OrderedDict()
        self._outsiders = Bucket(limits.outsider_handshake_rate,
                                 limits.outsider_handshake_burst, now)
        self._reply_rate = limits.peer_handshake_rate
        self._reply_burst = limits.peer_handshake_burst
        self._replies = {peer: Bucket(self._reply_rate, self._reply_burst, now)
                         for peer in peers}

    def challenge(self, ip: str, now: float) -> bool:
        """A CHALLENGE to a HELLO from `ip` that claims a validator not at `ip`: within
        the rate of that address and the rate of all such addresses together."""
        bucket = self._ip_bucket(ip, now)
        if not (bucket.ready(now) and self._outsiders.ready(now)):
            return False
        bucket.take()
        self._outsiders.take()
        return True

    def add(self, peer: int, now: float) -> None:
        """A bucket of signed REPLYs for a validator added to the roster (no-op if known)."""
        if peer not in self._replies:
            self._replies[peer] = Bucket(self._reply_rate, self._reply_burst, now)

    def reply(self, peer: int, now: float) -> bool:
        """A signed REPLY to validator `peer`, which has just proved its key."""
        bucket = self._replies[peer]
        if not bucket.ready(now):
            return False
        bucket.take()
        return True

    def _ip_bucket(self, ip: str, now: float) -> Bucket:
        bucket = self._by_ip.get(ip)
        if bucket is None:
            if len(self._by_ip) >= IP_BUCKETS:
                self._by_ip.popitem(last=False)
            bucket = self._by_ip[ip] = Bucket(self._ip_rate, self._ip_burst, now)
        else:
            self._by_ip.move_to_end(ip)
        return bucket


class _Kind:
    __slots__ = ("event", "fields", "count", "sources")

    def __init__(self, event: str, fields: dict):
        self.event, self.fields, self.count, self.sources = event, fields, 0, Counter()


class SampledLog:
    """Log lines of one kind (event and the fields that make it that kind) at most twice
    per interval: the first as it happens, with its details, and at the end of the
    interval one line with `summary=True` and how many there were (`count`), from how
    many addresses (`sources`) and which sent most (`top_source`, `top_count`)."""

    def __init__(self, interval_s: float, now: float, **context):
        self.interval_s = interval_s
        self._context = context
        self._started = now
        self._kinds: dict[tuple, _Kind] = {}

    def note(self, now: float, event: str, kind: dict, address: str | None = None,
             **details) -> None:
        if now - self._started >= self.interval_s:
            self.flush(now)
        key = (event, *sorted(kind.items(), key=lambda item: item[0]))
        found = self._kinds.get(key)
        if found is None:
            if len(self._kinds) >= LOG_KINDS:
                key, kind = (event, "other kinds"), {"other_kinds": True}
                found = self._kinds.get(key)
            if found is None:
                found = self._kinds[key] = _Kind(event, kind)
                line = {**details, **self._context, **kind}
                if address is not None:
                    line["address"] = address
                log.warning(event, **line)
        found.count += 1
        if address is not None and (address in found.sources
                                    or len(found.sources) < LOG_SOURCES):
            found.sources[address] += 1

    def tick(self, now: float) -> None:
        if now - self._started >= self.interval_s:
            self.flush(now)

    def flush(self, now: float) -> None:
        for found in self._kinds.values():
            if found.count > 1:
                extra = {}
                if found.sources:
                    top, top_count = found.sources.most_common(1)[0]
                    extra = {"sources": len(found.sources), "top_source": top,
                             "top_count": top_count}
                log.warning(found.event, **self._context, **found.fields, summary=True,
                            count=found.count, interval_s=round(now - self._started, 3),
                            **extra)
        self._kinds.clear()
        self._started = now
