"""A validator's settings: one TOML file in its folder (`node.toml`), read once at start.

Every size, queue and timer of the node has its limit here, with a default fit for the
demo network: this is the one place a validator's limits come from. What its parts get
(the consensus core's `Config`, the transport's `TransportLimits`, the runtime's own
bounds) is derived from the settings by `runtime_limits` and `consensus_config` below,
every relation between them with a named constant; the relations that must hold are
checked as the file is loaded (`check_relations`). Paths in the file are relative to
the file's folder, so the folder can move. A bad file is refused with a message that
names the setting, never a traceback.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chaincode.v1 import MAX_TXS_PER_BLOCK
from consensus import wire
from consensus.config import CLIENT_SHARE_DIVISOR, Config as ConsensusConfig
from consensus.digest import ZERO_HASH
from node.block import MAX_BLOCK_RECORD_BYTES
from node.frames import MESSAGE_OVERHEAD, TAG_BYTES
from node.transport import TransportLimits
from protocol.limits import MAX_ENVELOPE_BYTES

if TYPE_CHECKING:
    from node.genesis import Genesis

CONFIG_NAME = "node.toml"
MAX_GATEWAY_WORKERS = 64
MAX_TIMEOUT_S = 3600
MAX_CONNECTIONS = 1_000_000


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 8 * 1024 * 1024      # one message between validators
    send_queue_bytes: int = 64 * 1024 * 1024    # per peer, oldest dropped beyond it
    pending_requests: int = 50_000              # requests waiting to be ordered
    batch_max_count: int = 1_000                # requests in one block
    batch_max_bytes: int = 4 * 1024 * 1024
    fetch_max_blocks: int = 64                  # blocks in one catch-up answer
    verified_cache: int = 50_000                # envelopes verified and not yet executed
                                                # (about 1 KiB each): the admitted pool
                                                # is far smaller, so this is only a cap
    signer_rate_per_s: int = 100                # a citizen's or merchant's envelopes a
    signer_burst: int = 1_000                   # second, sustained and at once (429 past
                                                # them); staff keys are not limited


@dataclass(frozen=True)
class Timing:
    tick_ms: int = 10                           # how often the replica's clock ticks
    batch_wait_ticks: int = 3                   # a primary waits this long to fill a batch:
                                                # 30 ms, so blocks at a steady few hundred
                                                # tx/s carry tens of requests, not one or two
    request_timeout_ticks: int = 120            # 1.2 s without a commit before a backup
                                                # suspects the primary (a commit resets it;
                                                # max_in_flight keeps a burst's blocks few)
    max_clock_skew_ms: int = 2_000              # block times further off are refused


@dataclass(frozen=True)
class GatewayLimits:
    """The HTTP connections of one gateway process (gateway/connections.py has the
    rules; docs/operators.md, "Connections to the gateway")."""
    header_timeout_s: float = 10.0      # a new connection's first request headers, complete
    body_timeout_s: float = 30.0        # a request's body, once its headers are in (408)
    keepalive_timeout_s: float = 15.0   # the next request's headers, after a response
    max_connections_per_address: int = 64
    max_connections: int = 0            # in all; 0: from the process's open-file limit


GATEWAY_LIMITS = tuple(f.name for f in fields(GatewayLimits))
GATEWAY_KEYS = frozenset(("listen", "cors_origins", "workers", *GATEWAY_LIMITS))


@dataclass(frozen=True)
class NodeConfig:
    folder: Path
    name: str
    key_file: Path
    genesis_file: Path
    data_dir: Path
    peer_listen: tuple[str, int]
    gateway_listen: tuple[str, int]
    peers: dict[str, tuple[str, int]]
    cors_origins: tuple[str, ...] = ()
    # gateway processes beside the validator, all serving gateway_listen (SO_REUSEPORT);
    # 0 serves the gateway inside the validator's own process: development only, since
    # then HTTP work delays consensus (docs/operators.md, "Gateway processes")
    gateway_workers: int = 1
    gateway_limits: GatewayLimits = field(default_factory=GatewayLimits)
    limits: Limits = field(default_factory=Limits)
    timing: Timing = field(default_factory=Timing)


# ---- What the validator's parts get --------------------------------------------------
# The settings above are a validator's limits; its parts get them, and the relations
# between them, from `runtime_limits` and `consensus_config` only. Every number here that
# is not a setting is a fixed value of the node or a relation, named. The consensus
# core's `Config` has defaults of its own: those serve the simulator and the unit tests,
# never a validator, which passes every field from here (docs/consensus.md, "Limits").

# what a message between validators leaves of max_frame_bytes: the frame's AEAD tag,
# the message's length prefix and the kind byte of node/peering.py, with room to spare
FRAME_HEADROOM_BYTES = 1024
# a catch-up answer holds blocks up to max_frame_bytes // this (but always its first)
FETCH_ANSWER_FRAME_DIVISOR = 2
# ids submitted through this validator and not executed yet that it remembers (to
# answer `pending`): this many times pending_requests, the oldest forgotten first
IN_FLIGHT_POOLS = 2
# executed ids a restarted replica remembers as ordered (at most SEEN_LIMIT)
RECENT_IDS = 50_000
# admission (node/runtime.py, `admission_limit`): an idle validator still takes a first
# batch of this many requests, and its own gateways at least this many of the pool, so
# that a steady few hundred tx/s through one gateway is not refused
ADMISSION_MIN_POOL = 500
ADMISSION_MIN_OWN_SHARE = 250

# the consensus core's limits that no operator sets
MAX_IN_FLIGHT = 8               # a primary proposes h only if h <= committed + this
SEEN_LIMIT = 200_000            # keys remembered as ordered (dedup)
CENSORSHIP_FACTOR = 8           # an overtaken request waits this many request timeouts
MAX_BACKOFF_EXPONENT = 6        # timeouts double up to 2**6 times the base
STATUS_INTERVAL_TICKS = 5       # how often a replica tells its peers where it is
FETCH_TIMEOUT_TICKS = 20        # a catch-up request is retried after this
MAX_VIEWS_AHEAD = 64            # view-change messages kept for views this far on

# The most the wire adds to a batch's envelopes (checked against the encoders by
# tests/node/test_config_relations.py): a pre-prepare's peer frame without its envelopes;
# a catch-up answer of one block without its envelopes and certificate; each envelope's
# msgpack header; each signature of a certificate with its index.
PREPREPARE_OVERHEAD_BYTES = 256
BLOCK_ANSWER_OVERHEAD_BYTES = 512
ENVELOPE_OVERHEAD_BYTES = 5
CERTIFICATE_ENTRY_BYTES = 160
# envelopes in one block: what the chaincode executes and the wire decodes, at most
MAX_BATCH_COUNT = min(MAX_TXS_PER_BLOCK, wire.MAX_ITEMS)

assert FRAME_HEADROOM_BYTES >= TAG_BYTES + MESSAGE_OVERHEAD + 1


@dataclass(frozen=True, slots=True)
class RuntimeLimits:
    """Every limit of a running validator's parts, derived from its settings."""
    consensus: ConsensusConfig
    transport: TransportLimits
    in_flight_limit: int            # ids submitted here, not executed, remembered
    fetch_answer_bytes: int         # a catch-up answer's blocks (but at least one)
    recent_ids: int                 # executed ids a restarted replica takes as ordered
    admission_min_pool: int
    admission_min_own_share: int


def largest_message_bytes(limits: Limits) -> int:
    """The largest message this validator may send a peer: one frame, less
    FRAME_HEADROOM_BYTES, that also fits the peer's send queue."""
    return min(limits.max_frame_bytes - FRAME_HEADROOM_BYTES,
               limits.send_queue_bytes - MESSAGE_OVERHEAD)


def preprepare_bytes(limits: Limits) -> int:
    """The most a pre-prepare of a full batch takes on the wire (its batch fetched by a
    peer, BatchPayloads, takes no more)."""
    return (PREPREPARE_OVERHEAD_BYTES + limits.batch_max_count * ENVELOPE_OVERHEAD_BYTES
            + limits.batch_max_bytes)


def block_answer_bytes(limits: Limits, validators: int) -> int:
    """The most a catch-up answer of one full block takes on the wire, its record with a
    certificate of `validators` signatures; also a bound of the stored record."""
    return (BLOCK_ANSWER_OVERHEAD_BYTES + limits.batch_max_count * ENVELOPE_OVERHEAD_BYTES
            + limits.batch_max_bytes + validators * CERTIFICATE_ENTRY_BYTES)


def check_relations(limits: Limits, timing: Timing, validators: int = 0) -> None:
    """The relations between settings that must hold, each a ConfigError naming the
    settings: checked as the file is loaded (`validators` 0: what depends on the genesis,
    a block's certificate and whether there are backups, is left out until the genesis
    says how many validators there are) and again with the genesis's validators
    (`check_roster`, `consensus_config`).

    A pool smaller than a batch (pending_requests < batch_max_count) is allowed: its
    batches are never full, so each waits batch_wait_ticks, and nothing else changes."""
    count, size = limits.batch_max_count, limits.batch_max_bytes
    if count > MAX_BATCH_COUNT:
        raise ConfigError(f"[limits] batch_max_count ({count}) must be at most "
                          f"{MAX_BATCH_COUNT}: the most transactions a block may hold "
                          f"(chaincode MAX_TXS_PER_BLOCK, the wire's MAX_ITEMS)")
    if size < MAX_ENVELOPE_BYTES:
        raise ConfigError(f"[limits] batch_max_bytes ({size}) must be at least "
                          f"{MAX_ENVELOPE_BYTES}: a batch must hold any one envelope the "
                          f"door admits (protocol MAX_ENVELOPE_BYTES)")
    proposal = preprepare_bytes(limits)
    if proposal > limits.max_frame_bytes - FRAME_HEADROOM_BYTES:
        raise ConfigError(
            f"[limits] max_frame_bytes ({limits.max_frame_bytes}) must hold a full batch's "
            f"pre-prepare: batch_max_bytes ({size}) and batch_max_count ({count}) "
            f"envelopes take up to {proposal} bytes, and a frame keeps "
            f"{FRAME_HEADROOM_BYTES} for itself")
    if proposal > limits.send_queue_bytes - MESSAGE_OVERHEAD:
        raise ConfigError(
            f"[limits] send_queue_bytes ({limits.send_queue_bytes}) must hold a full "
            f"batch's pre-prepare: batch_max_bytes ({size}) and batch_max_count ({count}) "
            f"envelopes take up to {proposal} bytes")
    answer = block_answer_bytes(limits, validators)
    signers = f" and {validators} validators' signatures" if validators else ""
    if answer > MAX_BLOCK_RECORD_BYTES:
        raise ConfigError(
            f"[limits] batch_max_bytes ({size}) makes blocks of up to {answer} bytes, more "
            f"than a stored block may have ({MAX_BLOCK_RECORD_BYTES}, node/block.py)")
    if answer > largest_message_bytes(limits):
        raise ConfigError(
            f"[limits] max_frame_bytes ({limits.max_frame_bytes}) and send_queue_bytes "
            f"({limits.send_queue_bytes}) must hold a catch-up answer of one full block: "
            f"batch_max_bytes ({size}) and batch_max_count ({count}) envelopes{signers} "
            f"take up to {answer} bytes, and a frame keeps {FRAME_HEADROOM_BYTES} for itself")
    if validators > 1 and timing.batch_wait_ticks >= timing.request_timeout_ticks:
        raise ConfigError(
            f"[timing] batch_wait_ticks ({timing.batch_wait_ticks}) must be less than "
            f"request_timeout_ticks ({timing.request_timeout_ticks}) with {validators} "
            f"validators: the backups would replace a primary that waits to fill a batch")
    if timing.max_clock_skew_ms <= timing.tick_ms:
        raise ConfigError(
            f"[timing] max_clock_skew_ms ({timing.max_clock_skew_ms}) must be more than "
            f"tick_ms ({timing.tick_ms}): a replica reads its clock once a tick, so an "
            f"honest primary's block time may be a tick off a backup's")


def consensus_config(genesis: Genesis, limits: Limits, timing: Timing) -> ConsensusConfig:
    """The consensus core's Config of a validator of `genesis`: every field from the
    settings, a relation or a constant above, none from Config's own defaults."""
    check_relations(limits, timing, len(genesis.validators))
    interval = genesis.checkpoint_interval
    return ConsensusConfig(
        chain=genesis.chain,
        validators=tuple(genesis.validator_keys()),
        genesis_hash=genesis.hash(),
        checkpoint_interval=interval,
        window=genesis.window(),
        switch_margin=genesis.switch_margin(),
        # genesis's set; the next sets' configs derive from it (consensus/handover.py)
        first_height=1,
        base_hash=ZERO_HASH,
        batch_max_count=limits.batch_max_count,
        batch_max_bytes=limits.batch_max_bytes,
        batch_wait_ticks=timing.batch_wait_ticks,
        max_in_flight=MAX_IN_FLIGHT,
        pending_limit=limits.pending_requests,
        client_pending_limit=max(1, limits.pending_requests // CLIENT_SHARE_DIVISOR),
        seen_limit=SEEN_LIMIT,
        max_message_bytes=limits.max_frame_bytes - FRAME_HEADROOM_BYTES,
        request_timeout_ticks=timing.request_timeout_ticks,
        censorship_factor=CENSORSHIP_FACTOR,
        # a view change waits as long for its new view as a request for its commit
        view_change_timeout_ticks=timing.request_timeout_ticks,
        max_backoff_exponent=MAX_BACKOFF_EXPONENT,
        max_clock_skew_ms=timing.max_clock_skew_ms,
        status_interval_ticks=STATUS_INTERVAL_TICKS,
        fetch_timeout_ticks=FETCH_TIMEOUT_TICKS,
        fetch_max_blocks=limits.fetch_max_blocks,
        max_views_ahead=MAX_VIEWS_AHEAD)


def runtime_limits(genesis: Genesis, config: NodeConfig) -> RuntimeLimits:
    """What a running validator's parts get from its settings (node/runtime.py)."""
    limits = config.limits
    consensus = consensus_config(genesis, limits, config.timing)
    return RuntimeLimits(
        consensus=consensus,
        transport=TransportLimits(max_frame_bytes=limits.max_frame_bytes,
                                  max_queue_bytes=limits.send_queue_bytes),
        in_flight_limit=IN_FLIGHT_POOLS * limits.pending_requests,
        fetch_answer_bytes=limits.max_frame_bytes // FETCH_ANSWER_FRAME_DIVISOR,
        recent_ids=min(consensus.seen_limit, RECENT_IDS),
        admission_min_pool=ADMISSION_MIN_POOL,
        admission_min_own_share=ADMISSION_MIN_OWN_SHARE)


def parse_address(text: object, where: str) -> tuple[str, int]:
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"{where}: expected \"host:port\", got {text!r}")
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected \"host:port\" with a port from 1 to 65535, got {text!r}")
    return host, int(port)


def parse_origin(text: object, where: str) -> str:
    """A browser origin, `http(s)://host[:port]` as browsers send it, or "*" (any)."""
    if text == "*":
        return text
    problem = f"{where}: expected \"*\" or an origin \"http(s)://host[:port]\" " \
              f"without a path, got {text!r}"
    if not isinstance(text, str):
        raise ConfigError(problem)
    try:
        url = urlsplit(text)
        url.port  # raises ValueError for a port that is not one
    except ValueError:
        raise ConfigError(problem) from None
    if url.scheme not in ("http", "https") or not url.hostname or "@" in url.netloc \
            or text != f"{url.scheme}://{url.netloc}":
        raise ConfigError(problem)
    return text


def _no_unknown(raw: dict, known, section: str = "") -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{section}{unknown[0]}: unknown setting")


def _section(raw: dict, name: str) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}]: must be a table")
    return value


def _numbers(cls, raw: dict, section: str):
    _no_unknown(raw, {f.name for f in fields(cls)}, f"[{section}] ")
    for key, value in raw.items():
        if type(value) is not int or value <= 0:
            raise ConfigError(f"[{section}] {key} must be a positive whole number, got {value!r}")
    return cls(**raw)


def _gateway_limits(gateway: dict) -> GatewayLimits:
    found = {}
    for key in GATEWAY_LIMITS:
        if key not in gateway:
            continue
        value = gateway[key]
        if key.endswith("_s"):
            if type(value) not in (int, float) or not 0 < value <= MAX_TIMEOUT_S:
                raise ConfigError(f"[gateway] {key} must be a number of seconds "
                                  f"above 0 and at most {MAX_TIMEOUT_S}, got {value!r}")
            value = float(value)
        else:
            least = 0 if key == "max_connections" else 1
            if type(value) is not int or not least <= value <= MAX_CONNECTIONS:
                raise ConfigError(f"[gateway] {key} must be a whole number from "
                                  f"{least} to {MAX_CONNECTIONS}, got {value!r}")
        found[key] = value
    return GatewayLimits(**found)


def load(folder: str | Path) -> NodeConfig:
    """The settings in `folder`/node.toml. Every unknown or ill-typed setting is a
    ConfigError that starts with the file's path and names the setting."""
    folder = Path(folder)
    path = folder / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist (is {folder} a validator folder?)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    try:
        return _parse(folder, raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _parse(folder: Path, raw: dict) -> NodeConfig:
    _no_unknown(raw, ("name", "key_file", "genesis_file", "data_dir", "peer", "gateway",
                      "peers", "limits", "timing"))
    for key in ("name", "key_file", "genesis_file", "data_dir"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{key}: required, and must be text")
    peer, gateway = _section(raw, "peer"), _section(raw, "gateway")
    peers = _section(raw, "peers")
    _no_unknown(peer, ("listen",), "[peer] ")
    _no_unknown(gateway, GATEWAY_KEYS, "[gateway] ")
    workers = gateway.get("workers", 1)
    if type(workers) is not int or not 0 <= workers <= MAX_GATEWAY_WORKERS:
        raise ConfigError(f"[gateway] workers must be a whole number from 0 to "
                          f"{MAX_GATEWAY_WORKERS}, got {workers!r}")
    origins = gateway.get("cors_origins", [])
    if not isinstance(origins, list):
        raise ConfigError("[gateway] cors_origins must be a list of origins")
    config = NodeConfig(
        folder=folder,
        name=raw["name"],
        key_file=folder / raw["key_file"],
        genesis_file=folder / raw["genesis_file"],
        data_dir=folder / raw["data_dir"],
        peer_listen=parse_address(peer.get("listen"), "[peer] listen"),
        gateway_listen=parse_address(gateway.get("listen"), "[gateway] listen"),
        peers={name: parse_address(addr, f"[peers] {name}") for name, addr in peers.items()},
        cors_origins=tuple(parse_origin(o, "[gateway] cors_origins") for o in origins),
        gateway_workers=workers,
        gateway_limits=_gateway_limits(gateway),
        limits=_numbers(Limits, _section(raw, "limits"), "limits"),
        timing=_numbers(Timing, _section(raw, "timing"), "timing"),
    )
    check_relations(config.limits, config.timing)
    return config


def check_roster(config: NodeConfig, validators: list[str], join: bool = False,
                 needed: list[str] | None = None) -> None:
    """The settings against the validators the chain names (genesis's, then those of
    every set change this validator's ledger holds, in order): `name` must be one of
    them (unless `join`: a validator that joins is in none yet), [peers] must name
    every other one of `needed` (default: all of them; a validator removed from the set
    needs none) and may name others (a partner about to join, whose address is given
    before the set that adds it takes over), and the limits must hold a block signed by
    all of them (check_relations)."""
    path = config.folder / CONFIG_NAME
    try:
        check_relations(config.limits, config.timing, len(validators))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    if config.name not in validators and not join:
        raise ConfigError(f"{path}: name: {config.name!r} is not a validator of the "
                          f"genesis ({', '.join(validators)})")
    for other in config.peers:
        if other == config.name:
            raise ConfigError(f"{path}: [peers] {other}: this validator itself (its "
                              f"address is [peer] listen)")
    needed = validators if needed is None else needed
    missing = [n for n in needed if n != config.name and n not in config.peers]
    if missing:
        raise ConfigError(f"{path}: [peers] {missing[0]}: missing (every other validator "
                          f"of the genesis needs its address)")


def render(name: str, peer_listen: str, gateway_listen: str, peers: dict[str, str]) -> str:
    """The node.toml that `network init` writes: every setting shown, with what it means."""
    q = json.dumps  # a TOML basic string is a JSON string for these values
    lines = [
        "# Stadsmunt validator settings. Paths are relative to this folder.",
        f"name = {q(name)}",
        'key_file = "validator.key"      # this validator\'s Ed25519 seed (keep it secret)',
        'genesis_file = "genesis.json"   # the chain this validator belongs to',
        'data_dir = "data"               # the LMDB store: back this folder up',
        "",
        "[peer]",
        f"listen = {q(peer_listen)}       # where the other validators reach this one",
        "",
        "[gateway]",
        f"listen = {q(gateway_listen)}    # the HTTP API for apps",
        "cors_origins = []                # browser origins allowed to call the API",
        "workers = 1                      # gateway processes beside the validator (0: in",
        "                                 # the validator's process, development only)",
        "header_timeout_s = 10            # seconds for a new connection's request headers",
        "body_timeout_s = 30              # seconds for a request's body (else 408)",
        "keepalive_timeout_s = 15         # seconds for the next request after a response",
        "max_connections_per_address = 64 # open connections from one client address",
        "max_connections = 0              # open connections in all, per gateway process;",
        "                                 # 0: (open-file limit - 256) / 2, 16 to 8192",
        "",
        "[peers]                          # the other validators' peer addresses, by name",
    ]
    lines += [f"{q(other)} = {q(addr)}" for other, addr in peers.items()]
    lines += ["", "[limits]"]
    lines += [f"{f.name} = {f.default}" for f in fields(Limits)]
    lines += ["", "[timing]"]
    lines += [f"{f.name} = {f.default}" for f in fields(Timing)]
    return "\n".join(lines) + "\n"
