"""Genesis: what a chain is, fixed before block 1 (docs/protocol.md, "Genesis").

Chain id, city, coin name and symbol, the organisations with their steward keys, the
validators (name, Ed25519 key and organisation, in replica order), the first admin keys,
the constitution, the rules version, the cap policies and the checkpoint interval. Validator addresses are deliberately absent: an operator may move a validator
without starting a new chain. The SHA-256 of the tagged canonical bytes is the genesis
hash, which names the chain and is the prev_hash of block 1.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import chaincode
from consensus.digest import signing_domain
from protocol import codec

GENESIS_TAG = b"stadsmunt/genesis/v1"
FORMAT_VERSION = 2
MAX_AMOUNT = (1 << 53) - 1
CHAIN_RE = re.compile(r"[a-z0-9-]{1,32}")
ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
POLICY_CAPS = ("hourly_cap_21plus", "hourly_cap_under21", "monthly_cap", "yearly_cap")
OPTIONAL_CAPS = ("programme_yearly_cap",)

# The Dutch volunteer allowance limits of 2021-2026, in cents (docs/protocol.md, "Genesis").
DEFAULT_POLICIES = tuple(dict(p) for p in chaincode.DEFAULT_POLICIES)


class GenesisError(ValueError):
    """A genesis that breaks a rule; the message names the field."""


# the watermark window: this many checkpoint intervals, and at least MIN_WINDOW heights
WINDOW_CHECKPOINTS = 4
MIN_WINDOW = 64
assert WINDOW_CHECKPOINTS >= 2      # consensus.config.Config: two intervals at least

@dataclass(frozen=True, slots=True)
class GenesisValidator:
    """A validator as the genesis names it (the running one is node/runtime.py's
    `Validator`)."""
    name: str
    key: bytes
    organisation: str = ""      # "": the organisation named as the validator


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    stewards: tuple[bytes, ...]


@dataclass(frozen=True)
class Genesis:
    chain: str
    city: str
    coin_name: str
    coin_symbol: str
    validators: tuple[GenesisValidator, ...]
    admins: tuple[bytes, ...]
    organisations: tuple[Organisation, ...]
    rules_version: int = 1
    policies: tuple[dict, ...] = DEFAULT_POLICIES
    checkpoint_interval: int = 64
    # {"organisations", "recovery_delay_ms", "thresholds"}; None: the contract's defaults
    constitution: dict | None = None

    def __post_init__(self):
        if self.constitution is None and type(self.organisations) is tuple:
            ids = [getattr(o, "id", None) for o in self.organisations]
            if 1 <= len(ids) <= chaincode.MAX_ORGANISATIONS:
                object.__setattr__(self, "constitution", chaincode.default_constitution(ids))
        validators = tuple(v if not isinstance(v, GenesisValidator) or v.organisation
                           else GenesisValidator(v.name, v.key, v.name)
                           for v in self.validators)
        object.__setattr__(self, "validators", validators)
        _validate(self)

    def to_map(self) -> dict:
        return {"v": FORMAT_VERSION, "chain": self.chain, "city": self.city,
                "coin": {"name": self.coin_name, "symbol": self.coin_symbol},
                "validators": [{"name": v.name, "key": v.key, "organisation": v.organisation}
                               for v in self.validators],
                "admins": list(self.admins),
                "organisations": [{"id": o.id, "stewards": list(o.stewards)}
                                  for o in self.organisations],
                "constitution": dict(self.constitution), "rules": self.rules_version,
                "policies": [dict(p) for p in self.policies],
                "checkpoint_interval": self.checkpoint_interval}

    def state(self) -> tuple[dict, int]:
        """The chaincode's state before block 1: (writes, state accumulator)."""
        return chaincode.genesis_state(
            self.rules_version, list(self.admins), [dict(p) for p in self.policies],
            [{"id": o.id, "stewards": list(o.stewards)} for o in self.organisations],
            [{"name": v.name, "key": v.key, "organisation": v.organisation}
             for v in self.validators], dict(self.constitution))

    def canonical(self) -> bytes:
        return codec.pack(self.to_map())

    def hash(self) -> bytes:
        return hashlib.sha256(GENESIS_TAG + self.canonical()).digest()

    def domain(self) -> bytes:
        """What every validator signature of this network binds: the chain id and this
        genesis's hash (consensus.digest.signing_domain)."""
        return signing_domain(self.chain, self.hash())

    def validator_keys(self) -> list[bytes]:
        return [v.key for v in self.validators]

    def window(self) -> int:
        """The watermark window of this chain's validators: the heights one may have in
        flight beyond its last stable checkpoint (consensus.config.Config.window)."""
        return max(WINDOW_CHECKPOINTS * self.checkpoint_interval, MIN_WINDOW)

    def switch_margin(self) -> int:
        """M: a switch (rules.activate) enacted in block h names a height at least M
        above h, so that every validator has executed the enacting block, and a quorum
        certified it stable, before the switch is due. The window rounded up to a
        multiple of the checkpoint interval K, so that a height c + M, c a multiple of
        K, is a checkpoint too."""
        interval = self.checkpoint_interval
        return -(-self.window() // interval) * interval

    def to_json(self) -> str:
        data = {"format": FORMAT_VERSION, "chain": self.chain, "city": self.city,
                "coin": {"name": self.coin_name, "symbol": self.coin_symbol},
                "organisations": [{"id": o.id, "stewards": [k.hex() for k in o.stewards]}
                                  for o in self.organisations],
                "validators": [{"name": v.name, "key": v.key.hex(),
                                "organisation": v.organisation} for v in self.validators],
                "admins": [a.hex() for a in self.admins],
                "constitution": {"thresholds": dict(self.constitution["thresholds"]),
                                 "recovery_delay_ms": self.constitution["recovery_delay_ms"]},
                "rules_version": self.rules_version,
                "policies": [dict(p) for p in self.policies],
                "checkpoint_interval": self.checkpoint_interval}
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise GenesisError(message)


def _text(value, field: str, limit: int) -> None:
    _need(type(value) is str and 1 <= len(value) <= limit,
          f"{field} must be text of 1 to {limit} characters")


def _key(value, field: str) -> None:
    _need(type(value) is bytes and len(value) == 32, f"{field} must be a 32-byte key")


def _validate(g: Genesis) -> None:
    _need(type(g.chain) is str and CHAIN_RE.fullmatch(g.chain) is not None,
          "chain must match [a-z0-9-]{1,32}")
    _text(g.city, "city", 120)
    _text(g.coin_name, "coin name", 120)
    _text(g.coin_symbol, "coin symbol", 12)
    _need(type(g.validators) is tuple and len(g.validators) >= 1,
          "genesis needs at least one validator")
    _need(len(g.validators) == 1 or len(g.validators) >= 4,
          "a network has 1 validator (development) or at least 4 (n = 3f + 1, f >= 1)")
    for i, v in enumerate(g.validators):
        _need(isinstance(v, GenesisValidator), f"validator {i} must be a GenesisValidator")
        _need(type(v.name) is str and ID_RE.fullmatch(v.name) is not None,
              f"validator {i}: name must be 1 to 64 of [A-Za-z0-9._-]")
        _key(v.key, f"validator {v.name}: key")
    _need(len({v.name for v in g.validators}) == len(g.validators), "validator names repeat")
    _need(type(g.organisations) is tuple and len(g.organisations) >= 1,
          "genesis needs at least one organisation")
    for i, o in enumerate(g.organisations):
        _need(isinstance(o, Organisation), f"organisation {i} must be an Organisation")
        _need(type(o.id) is str and ID_RE.fullmatch(o.id) is not None,
              f"organisation {i}: id must be 1 to 64 of [A-Za-z0-9._-]")
        _need(type(o.stewards) is tuple and len(o.stewards) >= 1,
              f"organisation {o.id}: needs at least one steward key")
        for j, steward in enumerate(o.stewards):
            _key(steward, f"organisation {o.id}: steward {j}")
    ids = [o.id for o in g.organisations]
    _need(len(set(ids)) == len(ids), "organisation ids repeat")
    stewards = [k for o in g.organisations for k in o.stewards]
    _need(len(set(stewards)) == len(stewards), "a steward key appears twice")
    for v in g.validators:
        _need(v.organisation in ids,
              f"validator {v.name}: organisation {v.organisation!r} is not in organisations")
    _need(type(g.constitution) is dict, "constitution must be a map")
    problem = chaincode.constitution_problem(g.constitution)
    _need(problem is None, f"constitution: {problem}")
    _need(g.constitution["organisations"] == ids,
          "the constitution's organisations must be genesis's organisations, in order")
    _need(len({v.key for v in g.validators}) == len(g.validators), "validator keys repeat")
    _need(type(g.admins) is tuple and len(g.admins) >= 1, "genesis needs at least one admin")
    for i, admin in enumerate(g.admins):
        _key(admin, f"admin {i}")
    _need(len(set(g.admins)) == len(g.admins), "admin keys repeat")
    _need(not set(g.admins) & set(stewards), "a key is both an admin and a steward")
    _need(type(g.rules_version) is int and g.rules_version in chaincode.rules_versions(),
          f"rules version must be one this build runs: "
          f"{', '.join(map(str, chaincode.rules_versions()))}")
    _need(type(g.checkpoint_interval) is int and 1 <= g.checkpoint_interval <= 100_000,
          "checkpoint interval must be 1 to 100000 blocks")
    _need(type(g.policies) is tuple, "policies must be a tuple")
    years = [_policy(p) for p in g.policies]
    _need(years == sorted(set(years)), "policies must be in year order, one per year")


def _policy(p) -> int:
    _need(type(p) is dict, "a policy is a map")
    allowed = {"year", *POLICY_CAPS, *OPTIONAL_CAPS}
    _need(set(p) <= allowed and set(p) >= {"year", *POLICY_CAPS},
          f"a policy has year, {', '.join(POLICY_CAPS)} and optionally "
          f"programme_yearly_cap; found {sorted(p)}")
    year = p["year"]
    _need(type(year) is int and 2000 <= year <= 9999, "policy year must be 2000 to 9999")
    for name in p:
        if name != "year":
            _need(type(p[name]) is int and 0 <= p[name] <= MAX_AMOUNT,
                  f"policy {year}: {name} must be 0 to 2^53 - 1 cents")
    _need(p["monthly_cap"] <= p["yearly_cap"], f"policy {year}: monthly cap above yearly cap")
    _need(p.get("programme_yearly_cap", 0) <= p["yearly_cap"],
          f"policy {year}: programme cap above yearly cap")
    return year


def _hex_key(value, field: str) -> bytes:
    _need(type(value) is str and len(value) == 64, f"{field} must be 64 hex characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise GenesisError(f"{field} must be 64 hex characters") from None


def from_json(text: str) -> Genesis:
    """Parse and validate the JSON form; every problem is a GenesisError."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GenesisError(f"not JSON: {error}") from None
    _need(type(data) is dict, "genesis must be a JSON object")
    version = data.get("format", 1)
    _need(version == FORMAT_VERSION,
          f"this genesis is of format {version!r}; this version of stadsmunt reads format "
          f"{FORMAT_VERSION} (organisations with steward keys and a constitution): build a "
          "new one with `stadsmunt genesis` (docs/operators.md, \"Genesis\")")
    known = {"format", "chain", "city", "coin", "validators", "admins", "organisations",
             "constitution", "rules_version", "policies", "checkpoint_interval"}
    _need(set(data) <= known, f"unknown genesis fields: {sorted(set(data) - known)}")
    _need({"chain", "city", "coin", "validators", "admins", "organisations"} <= set(data),
          "genesis needs chain, city, coin, organisations, validators and admins")
    coin = data["coin"]
    _need(type(coin) is dict and set(coin) == {"name", "symbol"},
          "coin must be {\"name\", \"symbol\"}")
    _need(type(data["validators"]) is list and type(data["admins"]) is list
          and type(data["organisations"]) is list,
          "organisations, validators and admins must be lists")
    validators = []
    for i, v in enumerate(data["validators"]):
        _need(type(v) is dict and set(v) == {"name", "key", "organisation"},
              f"validator {i} must be {{\"name\", \"key\", \"organisation\"}}")
        validators.append(GenesisValidator(v["name"], _hex_key(v["key"], f"validator {i} key"),
                                           v["organisation"]))
    organisations = []
    for i, o in enumerate(data["organisations"]):
        _need(type(o) is dict and set(o) == {"id", "stewards"} and type(o["stewards"]) is list,
              f"organisation {i} must be {{\"id\", \"stewards\": [public keys]}}")
        organisations.append(Organisation(o["id"], tuple(
            _hex_key(k, f"organisation {o['id']}: steward {j}")
            for j, k in enumerate(o["stewards"]))))
    constitution = None
    if "constitution" in data:
        given = data["constitution"]
        _need(type(given) is dict and set(given) <= {"thresholds", "recovery_delay_ms"}
              and "thresholds" in given,
              "constitution must be {\"thresholds\": {...}, \"recovery_delay_ms\": ms}")
        constitution = chaincode.default_constitution([o.id for o in organisations])
        constitution["thresholds"] = given["thresholds"]
        constitution["recovery_delay_ms"] = given.get(
            "recovery_delay_ms", constitution["recovery_delay_ms"])
    policies = data.get("policies", [dict(p) for p in DEFAULT_POLICIES])
    _need(type(policies) is list, "policies must be a list")
    return Genesis(
        chain=data["chain"], city=data["city"], coin_name=coin["name"],
        coin_symbol=coin["symbol"], validators=tuple(validators),
        admins=tuple(_hex_key(a, f"admin {i}") for i, a in enumerate(data["admins"])),
        organisations=tuple(organisations), constitution=constitution,
        rules_version=data.get("rules_version", 1), policies=tuple(policies),
        checkpoint_interval=data.get("checkpoint_interval", 64))


MAP_KEYS = {"admins", "chain", "checkpoint_interval", "city", "coin", "constitution",
            "organisations", "policies", "rules", "v", "validators"}


def from_map(m) -> Genesis:
    """The Genesis of its canonical map (docs/protocol.md, "Genesis"); GenesisError when
    it is not one. Callers compare `canonical()` with the bytes they read."""
    _need(type(m) is dict, "the genesis is not a map")
    _need(m.get("v") == FORMAT_VERSION,
          f"genesis format {m.get('v')!r}; this version reads format {FORMAT_VERSION}")
    _need(set(m) == MAP_KEYS, "the genesis map does not have exactly the documented keys")
    _need(type(m["coin"]) is dict and set(m["coin"]) == {"name", "symbol"},
          "the genesis coin is not {name, symbol}")
    _need(type(m["validators"]) is list and all(
        type(v) is dict and set(v) == {"key", "name", "organisation"} for v in m["validators"]),
        "a validator is not {key, name, organisation}")
    _need(type(m["organisations"]) is list and all(
        type(o) is dict and set(o) == {"id", "stewards"} and type(o["stewards"]) is list
        for o in m["organisations"]), "an organisation is not {id, stewards}")
    _need(type(m["admins"]) is list and type(m["policies"]) is list,
          "admins and policies are lists")
    return Genesis(
        chain=m["chain"], city=m["city"], coin_name=m["coin"]["name"],
        coin_symbol=m["coin"]["symbol"],
        validators=tuple(GenesisValidator(v["name"], v["key"], v["organisation"])
                         for v in m["validators"]),
        admins=tuple(m["admins"]),
        organisations=tuple(Organisation(o["id"], tuple(o["stewards"]))
                            for o in m["organisations"]),
        constitution=m["constitution"], rules_version=m["rules"],
        policies=tuple(m["policies"]), checkpoint_interval=m["checkpoint_interval"])


def load(path: str | Path) -> Genesis:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise GenesisError(f"{path}: cannot read ({error})") from None
    return from_json(text)
