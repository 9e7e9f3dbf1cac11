"""Every limit of the consensus core in one frozen object, so nothing grows unbounded.

The defaults below are test defaults: they serve the simulator (tests/sim) and the unit
tests (tests/consensus), which rely on them as they are. A validator never uses them:
its Config is built by node/config.py's `consensus_config`, which passes every field
from the validator's settings (node.toml, docs/operators.md), its genesis and the named
constants there (docs/consensus.md, "Limits")."""
from __future__ import annotations

from dataclasses import dataclass, field

from consensus.digest import (ZERO_HASH, max_faulty, quorum, signing_domain,
                              validator_set_hash)

# By default one client may hold a sixteenth of the pool: sixteen clients that flood
# together are needed to fill it, and the pool's fair batching (consensus/requests.py)
# keeps everyone else's turn whatever they hold.
CLIENT_SHARE_DIVISOR = 16


@dataclass(frozen=True, slots=True)
class Config:
    # (defaults: test defaults, see above)
    chain: str
    validators: tuple[bytes, ...]        # 32-byte Ed25519 keys of the set, in its order
    checkpoint_interval: int = 16        # K: a checkpoint every K blocks
    window: int = 64                     # watermark window: heights (S, S + window]
    batch_max_count: int = 500
    batch_max_bytes: int = 4 * 1024 * 1024
    batch_wait_ticks: int = 0            # a primary waits this long to fill a batch
    max_in_flight: int = 8               # a primary proposes h only if h <= committed + this
    pending_limit: int = 20_000          # requests waiting to be ordered
    # requests one client may have waiting; None: pending_limit // CLIENT_SHARE_DIVISOR
    # (at least 1), filled in at construction (so dataclasses.replace of pending_limit
    # alone keeps the old share: pass both)
    client_pending_limit: int | None = None
    seen_limit: int = 200_000            # keys remembered as ordered (dedup)
    max_message_bytes: int = 16 * 1024 * 1024
    request_timeout_ticks: int = 20      # oldest pending request waits this long
    censorship_factor: int = 8           # ... or this many times as long once overtaken
    view_change_timeout_ticks: int = 20  # a view change waits this long for its new view
    max_backoff_exponent: int = 6        # timeouts double up to 2**6 times the base
    max_clock_skew_ms: int = 5_000
    status_interval_ticks: int = 5       # how often a replica tells peers where it is
    fetch_timeout_ticks: int = 20        # a catch-up request is retried after this
    fetch_max_blocks: int = 256
    max_views_ahead: int = 64            # view-change messages kept for views this far on
    # the genesis this network started from: every signature and digest binds it
    genesis_hash: bytes = bytes(32)
    # The validator set this config serves orders heights from first_height on (1 for
    # genesis's); base_hash is the hash of the block before it, which every member
    # executed before the set took over (so it counts as certified under this set).
    first_height: int = 1
    base_hash: bytes = ZERO_HASH
    # M: a set or rules change enacted at height h takes effect no earlier than
    # c + M + 1, c the first multiple of K at or above h. None: the window rounded up to
    # a multiple of K (node/genesis.py's switch_margin, the value validators use)
    switch_margin: int | None = None
    # what every signed byte string carries (consensus.digest.signing_domain), made here
    domain: bytes = field(init=False, default=b"")
    # consensus.digest.validator_set_hash of (first_height, validators), made here
    set_hash: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", signing_domain(self.chain, self.genesis_hash))
        object.__setattr__(self, "set_hash", validator_set_hash(
            self.domain, self.first_height, tuple(self.validators)))
        if self.switch_margin is None:
            k = self.checkpoint_interval
            object.__setattr__(self, "switch_margin", -(-self.window // k) * k)
        if self.client_pending_limit is None:
            object.__setattr__(self, "client_pending_limit",
                               max(1, self.pending_limit // CLIENT_SHARE_DIVISOR))
        n = len(self.validators)
        if not (n == 1 or n >= 4):
            raise ValueError("a network has 1 validator (development) or at least 4")
        if len(set(self.validators)) != n or any(len(k) != 32 for k in self.validators):
            raise ValueError("validators are distinct 32-byte keys")
        if self.checkpoint_interval < 1 or self.window < 2 * self.checkpoint_interval:
            raise ValueError("the window must hold at least two checkpoint intervals")
        for name in ("batch_max_count", "batch_max_bytes", "pending_limit", "seen_limit",
                     "request_timeout_ticks", "view_change_timeout_ticks",
                     "status_interval_ticks", "fetch_timeout_ticks", "fetch_max_blocks",
                     "max_views_ahead", "max_message_bytes", "censorship_factor",
                     "max_in_flight", "client_pending_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.switch_margin < self.window or self.switch_margin % self.checkpoint_interval:
            raise ValueError("the switch margin is a multiple of K no smaller than the window")
        if self.first_height < 1 or len(self.base_hash) != 32 or \
                (self.first_height == 1) != (self.base_hash == ZERO_HASH) or \
                (self.first_height - 1) % self.checkpoint_interval:
            raise ValueError("a set starts at height 1 from nothing, or after a checkpoint "
                             "height with that block's hash")
        if self.client_pending_limit > self.pending_limit:
            raise ValueError("client_pending_limit must not exceed pending_limit")

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return max_faulty(self.n)

    @property
    def quorum(self) -> int:
        return quorum(self.n)

    def primary(self, view: int) -> int:
        return view % self.n

    def backoff(self, base: int, attempts: int) -> int:
        return base << min(attempts, self.max_backoff_exponent)
