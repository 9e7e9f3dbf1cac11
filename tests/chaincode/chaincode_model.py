"""The model of tests/chaincode/test_chaincode_properties.py: the day-to-day rules written
out from docs/chaincode.md alone, never from the chaincode's helpers (no caps.earned,
caps.reserved_at, queries or periods; Amsterdam's calendar comes from zoneinfo). `Model`
keeps members, tasks, claims, earnings, spends and payouts and predicts every
transaction's code, info and events; the cast and the drawing helpers name keys so that a
failing example reads as names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from chaincode.api import Tx
from chaincode_harness import ADMIN, DAY_MS, HOUR_MS, STEWARD, key

# ----------------------------------------------------------------------- the rules
# Written out from docs/chaincode.md ("Order of checks": who signs what, and the one
# organisation's default constitution), not imported from the chaincode.
SIGNERS = {
    "member.register": {"admin"}, "member.update": {"admin"}, "member.revoke": {"admin"},
    "member.recover": {"admin"}, "policy.set": {"admin"}, "constitution.set": set(),
    "recovery.cancel": {"steward", "admin"}, "recovery.complete": {"admin"},
    "gov.propose": {"steward"}, "gov.approve": {"steward"}, "gov.withdraw": {"steward"},
    "task.post": {"admin"}, "task.claim": {"citizen"}, "task.withdraw": {"citizen"},
    "task.submit": {"citizen"}, "task.approve": {"reviewer", "admin"},
    "task.reject": {"reviewer", "admin"}, "task.cancel": {"admin"},
    "coin.spend": {"citizen", "merchant"}, "coin.refund": {"merchant"},
    "coin.redeem": {"merchant"}, "payout.confirm": {"admin"},
}
GOVERNABLE = ("member.register", "member.revoke", "member.recover", "policy.set",
              "constitution.set")
PRIVILEGED = ("admin", "reviewer", "auditor", "steward")
# One organisation: every threshold 1 but member.citizen and member.merchant, 0.
THRESHOLDS = {"policy.set": 1, "member.citizen": 0, "member.merchant": 0,
              "member.privileged": 1, "member.recover": 1, "constitution.set": 1}
RECOVERY_DELAY_MS = 3 * DAY_MS
MAX_EXPIRY_MS = 30 * DAY_MS
MAX_AMOUNT = 2**53 - 1
CAP_ORDER = ("monthly", "yearly", "programme")
# "Order of checks": the common ones, then each kind's own in this order.
CHECKS = ("duplicate", "unknown_kind", "invalid_args", "unknown_member", "revoked", "frozen",
          "unauthorized", "not_found", "exists", "invalid_state", "not_a_merchant",
          "deadline_passed", "task_full", "hourly_rate_exceeded", "cap_exceeded",
          "insufficient_funds")
ATTRIBUTES = {"citizen": ("age_band", "area"), "merchant": ("name",)}
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

POLICY = dict(year=2025, hourly_cap_21plus=600, hourly_cap_under21=400,
              monthly_cap=3000, yearly_cap=9000, programme_yearly_cap=7000)

# Starts just before the boundaries that matter: end of month before the March switch,
# the October switch, New Year (2026 has no policy of its own: 2025's is the fallback),
# and an end of a 31-day month in summer.
STARTS = [1_743_289_200_000 - 3 * HOUR_MS,     # 2025-03-29T23:00Z - 3h
          1_761_433_200_000 - 5 * HOUR_MS,     # 2025-10-25T23:00Z - 5h
          1_767_222_000_000 - 2 * DAY_MS,      # 2025-12-31T23:00Z - 2 days
          1_753_912_800_000 - HOUR_MS]         # 2025-07-30T22:00Z - 1h


def periods(time_ms: int) -> tuple[int, str, str]:
    """(local year, "YYYY-MM", "YYYY") in Amsterdam, from the time-zone database.
    Period boundaries fall on whole seconds, so the milliseconds can go."""
    local = datetime.fromtimestamp(time_ms // 1000, AMSTERDAM)
    return local.year, f"{local.year:04d}-{local.month:02d}", f"{local.year:04d}"


# ----------------------------------------------------------------------- the cast
CITIZENS = [key(f"citizen-{i}") for i in range(6)]
BANDS = {k: ("under21" if i % 2 == 0 else "21plus") for i, k in enumerate(CITIZENS)}
MERCHANTS = [key(f"merchant-{i}") for i in range(3)]
REVIEWER = key("reviewer")
FRESH = [key(f"fresh-{i}") for i in range(6)]          # registered or recovered to later
STRANGER = key("stranger")                              # never a member
ALL_KEYS = [ADMIN, STEWARD, REVIEWER, STRANGER] + CITIZENS + MERCHANTS + FRESH
NAMES = {ADMIN: "admin", STEWARD: "steward", REVIEWER: "reviewer", STRANGER: "stranger"}
NAMES.update({k: f"citizen-{i}" for i, k in enumerate(CITIZENS)})
NAMES.update({k: f"merchant-{i}" for i, k in enumerate(MERCHANTS)})
NAMES.update({k: f"fresh-{i}" for i, k in enumerate(FRESH)})


KEYS = {n: k for k, n in NAMES.items()}


def name(k) -> str:
    if isinstance(k, bytes):
        return NAMES.get(k, k.hex()[:8] + "...")
    return repr(k)


# Draws name keys and transactions rather than show their bytes, so that a failing
# example reads as names.
def one(d, items: list, label: str | None = None):
    if items and isinstance(items[0], bytes):
        return KEYS[d(st.sampled_from([NAMES[k] for k in items]), label=label)]
    return d(st.sampled_from(items), label=label)


def some(d, keys: list[bytes], least: int, most: int, label: str | None = None) -> list:
    names = d(st.lists(st.sampled_from([NAMES[k] for k in keys]), min_size=least,
                       max_size=most, unique=True), label=label)
    return [KEYS[n] for n in names]


def shuffled(d, txs: list[Tx]) -> list[Tx]:
    return [txs[i] for i in d(st.permutations(range(len(txs))), label="order")]


class Broken(AssertionError):
    """An invariant does not hold; the message starts with its name."""


def check(invariant: str, holds: bool, detail) -> None:
    if not holds:
        raise Broken(f"{invariant}: {detail() if callable(detail) else detail}")


def show(args: dict) -> str:
    return "{" + ", ".join(f"{k}: {name(v) if isinstance(v, bytes) else repr(v)}"
                           for k, v in args.items()) + "}"


def diff(got: dict, expected: dict) -> str:
    keys = [k for k in set(got) | set(expected) if got.get(k) != expected.get(k)]
    return "; ".join(f"{k}: {got.get(k)!r} != {expected.get(k)!r}" for k in keys[:5])


class Refused(Exception):
    def __init__(self, code: str, info: dict | None = None):
        super().__init__(code)
        self.code = code
        self.info = info or {}


def governed_class(members: dict, action: str, args: dict) -> str | None:
    """docs/governance.md: the class of a governable action, whose threshold decides who
    may take it (None: an admin alone, always); LookupError when its target is no member.
    Shared by this model and tests/chaincode/test_governance_properties.py's."""
    if action in ("policy.set", "constitution.set"):
        return action
    if action == "member.register":
        role = args["role"]
        return "member." + role if role in ("citizen", "merchant") else "member.privileged"
    target = members.get(args["key"] if action == "member.revoke" else args["old"])
    if target is None:
        raise LookupError(action)
    if target.role in ("admin", "reviewer", "auditor", "steward"):
        return "member.privileged"
    if action == "member.recover":
        return "member.recover"
    return "member.merchant" if target.role == "merchant" else None


# ----------------------------------------------------------------------- the model
@dataclass
class Member:
    """A member as both chaincode models see it (this one and the governance one)."""
    role: str
    attrs: dict = field(default_factory=dict)      # age_band/area, name, organisation
    active: bool = True
    frozen: bool = False
    recovered_to: bytes | None = None
    steward_cancelled: bool = False
    balance: int = 0

    @property
    def org(self):
        return self.attrs.get("organisation")


@dataclass
class Task:
    reward: int
    minutes: int
    slots: int
    deadline: int
    cancelled: bool = False


@dataclass
class Spend:
    payer: bytes
    payee: bytes
    amount: int
    refunded: int = 0


@dataclass
class Payout:
    merchant: bytes
    amount: int
    status: str = "pending"


@dataclass
class Recovery:
    new: bytes
    effective: int


def _int_in(low: int, high: int):
    return lambda v: None if type(v) is not int else None if low <= v <= high else "range"


# The args the machine can get wrong on purpose, as docs/transactions.md lists them per
# kind, in its schema order: (name, the problem of a value, or None if it is good).
_AMOUNT = _int_in(1, MAX_AMOUNT)
_CAP = _int_in(0, MAX_AMOUNT)
ARG_CHECKS = {
    "coin.spend": [("to", lambda v: None if type(v) is bytes and len(v) == 32 else "length"),
                   ("amount", _AMOUNT),
                   ("memo", lambda v: None if len(v) <= 140 else "length")],
    "coin.refund": [("amount", _AMOUNT)],
    "coin.redeem": [("amount", _AMOUNT)],
    "task.post": [("reward", _AMOUNT), ("minutes", _int_in(1, 10_080)),
                  ("slots", _int_in(1, 10_000)), ("deadline", _int_in(0, 2**63 - 1))],
    "policy.set": [("year", _int_in(2000, 9999)), ("hourly_cap_21plus", _CAP),
                   ("hourly_cap_under21", _CAP), ("monthly_cap", _CAP), ("yearly_cap", _CAP),
                   ("programme_yearly_cap", _CAP)],
}


def arg_reason(kind: str, signer: bytes, args: dict) -> tuple[str, str] | None:
    """docs/api.md, "Results": (argument, problem) of the first failure in its order -
    each arg in schema order, then the rules across args (monthly_cap before
    programme_yearly_cap, then `to`); in a proposal, the action's args as `args.NAME`."""
    if kind == "gov.propose":
        inner = arg_reason(args["action"], b"", args["args"])
        return None if inner is None else ("args." + inner[0], inner[1])
    for name, problem_of in ARG_CHECKS.get(kind, ()):
        if name in args and problem_of(args[name]) is not None:
            return name, problem_of(args[name])
    if kind == "policy.set":
        top = args["yearly_cap"]
        for name in ("monthly_cap", "programme_yearly_cap"):
            if args.get(name, 0) > top:
                return name, "conflict"
    if kind == "coin.spend" and args["to"] == signer:
        return "to", "conflict"
    return None


class Model:
    """What the ledger should be; `execute` predicts (code, info, events) and, for `ok`,
    applies the effects. Every handler checks everything before it changes anything."""

    def __init__(self):
        self.members: dict[bytes, Member] = {
            ADMIN: Member("admin"), STEWARD: Member("steward", {"organisation": "city"})}
        self.policies: dict[int, dict] = {POLICY["year"]: dict(POLICY)}
        self.tasks: dict[str, Task] = {}
        self.claims: dict[tuple[str, bytes], str] = {}
        self.earned: dict[tuple[bytes, str], int] = {}
        self.cap_at_mint: dict[tuple[bytes, str], int] = {}
        self.minted = 0
        self.redeemed = 0
        self.spends: dict[str, Spend] = {}
        self.payouts: dict[str, Payout] = {}
        self.recoveries: dict[bytes, Recovery] = {}
        self.executed: set[str] = set()

    # --- reading the model
    def policy(self, year: int) -> dict:
        """The policy in force for a local year: its own, else the latest earlier one."""
        years = [y for y in self.policies if y <= year]
        if not years:
            raise Refused("invalid_state")
        return self.policies[max(years)]

    def current(self, k: bytes) -> bytes:
        while k in self.members and self.members[k].recovered_to is not None:
            k = self.members[k].recovered_to
        return k

    def taken(self, task: str) -> int:
        return sum(1 for (t, _), s in self.claims.items()
                   if t == task and s in ("open", "submitted", "approved"))

    def reserved(self, citizen: bytes, time_ms: int) -> int:
        total = 0
        for (t, k), s in self.claims.items():
            if k == citizen and (s == "submitted"
                                 or (s == "open" and self.tasks[t].deadline > time_ms)):
                total += self.tasks[t].reward
        return total

    def used(self, k: bytes, besides: bytes | None = None) -> bool:
        """A key that has been a member, or is the new key of an open recovery."""
        return k in self.members or any(r.new == k for old, r in self.recoveries.items()
                                        if old != besides)

    def claimants(self, task: str) -> list[tuple[bytes, str]]:
        return [(k, s) for (t, k), s in self.claims.items() if t == task]

    def caps(self, policy: dict, citizen: bytes, time_ms: int) -> list[tuple]:
        """(name, period, cap, earned) of each cap in force."""
        _, month, year = periods(time_ms)
        out = [("monthly", month, policy["monthly_cap"], self.earned.get((citizen, month), 0)),
               ("yearly", year, policy["yearly_cap"], self.earned.get((citizen, year), 0))]
        if "programme_yearly_cap" in policy:
            out.append(("programme", year, policy["programme_yearly_cap"],
                        self.earned.get((citizen, year), 0)))
        return out

    def check_caps(self, policy, citizen, time_ms, reward, reserved) -> None:
        failing = []
        for cap_name, period, cap, earned in self.caps(policy, citizen, time_ms):
            room = cap - earned - reserved
            if room < reward:
                failing.append((max(room, 0), CAP_ORDER.index(cap_name), cap_name, period))
        if failing:
            allowed, _, cap_name, period = min(failing)
            raise Refused("cap_exceeded", {"cap": cap_name, "period": period,
                                           "allowed": allowed})

    @staticmethod
    def check_hourly(policy, band, reward, minutes) -> None:
        cap = policy["hourly_cap_" + band]
        if reward * 60 > cap * minutes:
            raise Refused("hourly_rate_exceeded", {"band": band,
                                                   "max_reward": cap * minutes // 60})

    # --- executing
    def execute(self, tx: Tx, time_ms: int) -> tuple[str, dict, list]:
        if tx.tx_id in self.executed:
            return "duplicate", {}, []
        self.executed.add(tx.tx_id)
        try:
            return "ok", {}, self._run(tx, time_ms)
        except Refused as refusal:
            return refusal.code, refusal.info, []

    def _run(self, tx: Tx, now: int) -> list:
        kind, signer, args = tx.kind, tx.signer, tx.args
        if kind not in SIGNERS:
            raise Refused("unknown_kind")
        wrong = arg_reason(kind, signer, args)
        if wrong is not None:
            raise Refused("invalid_args", {"argument": wrong[0], "problem": wrong[1]})
        me = self.members.get(signer)
        if me is None:
            raise Refused("unknown_member")
        if not me.active:
            raise Refused("revoked")
        if kind == "task.approve":
            citizen = self.members.get(args["citizen"])
            if citizen is not None and not citizen.active:
                raise Refused("revoked")
        if me.frozen:
            raise Refused("frozen")
        if me.role not in SIGNERS[kind]:
            raise Refused("unauthorized")
        if kind in GOVERNABLE:
            klass = self.klass(kind, args)
            if klass is not None and THRESHOLDS[klass] >= 1:
                if klass == "member.recover":
                    return self.open_recovery(signer, args, now)
                raise Refused("unauthorized")
            return self.act(kind, signer, args, now)
        handler = getattr(self, kind.replace(".", "_"))
        return handler(tx, me, args, now)

    def klass(self, action: str, args: dict) -> str | None:
        try:
            return governed_class(self.members, action, args)
        except LookupError:
            raise Refused("not_found") from None

    def act(self, action: str, signer: bytes, args: dict, now: int) -> list:
        """A governable action, signed by an admin (class 0) or by governance (b"")."""
        if action == "member.register":
            k, role = args["key"], args["role"]
            if self.used(k):
                raise Refused("exists")
            attrs = {n: args[n] for n in ATTRIBUTES.get(role, ())}
            self.members[k] = Member(role, attrs)
            return [dict(attrs, kind="member.registered", key=k, role=role)]
        if action == "member.revoke":
            return self.revoke(signer, args["key"])
        if action == "member.recover":
            return self.recover_now(args["old"], args["new"])
        if action == "policy.set":
            if args["year"] < periods(now)[0]:
                raise Refused("invalid_state")
            self.policies[args["year"]] = dict(args)
            return [dict(args, kind="policy.set")]
        raise AssertionError(f"the machine does not send {action}")

    def revoke(self, signer: bytes, k: bytes) -> list:
        target = self.members.get(k)
        if target is None:
            raise Refused("not_found")
        if k == signer or not target.active:
            raise Refused("invalid_state")
        if target.role == "admin" and sum(
                1 for m in self.members.values() if m.role == "admin" and m.active) <= 1:
            raise Refused("invalid_state")
        events = []
        if k in self.recoveries:
            del self.recoveries[k]
            target.frozen = False
            events.append({"kind": "member.recovery_cancelled", "old": k,
                           "by": signer or "governance"})
        target.active = False
        return events + [{"kind": "member.revoked", "key": k}]

    def open_recovery(self, signer: bytes, args: dict, now: int) -> list:
        old, new = args["old"], args["new"]
        target = self.members[old]
        if self.used(new):
            raise Refused("exists")
        if (target.recovered_to is not None or old in self.recoveries
                or target.steward_cancelled):
            raise Refused("invalid_state")
        effective = now + RECOVERY_DELAY_MS
        self.recoveries[old] = Recovery(new, effective)
        target.frozen = True
        return [{"kind": "member.recovery_opened", "old": old, "new": new,
                 "effective": effective}]

    def recover_now(self, old: bytes, new: bytes) -> list:
        target = self.members.get(old)
        if target is None:
            raise Refused("not_found")
        if self.used(new, besides=old):
            raise Refused("exists")
        if target.recovered_to is not None:
            raise Refused("invalid_state")
        events = []
        if old in self.recoveries:
            del self.recoveries[old]
            target.frozen = False
            events.append({"kind": "member.recovery_cancelled", "old": old,
                           "by": "governance"})
        return events + [self.move(old, new)]

    def move(self, old: bytes, new: bytes) -> dict:
        """Everything of `old` moves to `new`; `old` keeps only its role."""
        target = self.members[old]
        self.members[new] = Member(target.role, dict(target.attrs), balance=target.balance)
        self.members[old] = Member(target.role, active=False, recovered_to=new)
        self.claims = {(t, new if k == old else k): s for (t, k), s in self.claims.items()}
        for table in (self.earned, self.cap_at_mint):
            for (k, period) in [e for e in table if e[0] == old]:
                table[(new, period)] = table.pop((k, period))
        for payout in self.payouts.values():
            if payout.merchant == old and payout.status == "pending":
                payout.merchant = new
        return {"kind": "member.recovered", "old": old, "new": new, "balance": target.balance}

    # --- the kinds that are never governed (named after the kind)
    def member_update(self, tx, me, args, now):
        target = self.members.get(args["key"])
        if target is None:
            raise Refused("not_found")
        if target.role != "citizen" or not target.active:
            raise Refused("invalid_state")
        changed = {n: args[n] for n in ("age_band", "area") if n in args}
        target.attrs.update(changed)
        return [dict(changed, kind="member.updated", key=args["key"])]

    def recovery_cancel(self, tx, me, args, now):
        old = args["old"]
        if old not in self.recoveries:
            raise Refused("not_found")
        del self.recoveries[old]
        target = self.members[old]
        target.frozen = False
        if me.role == "steward":
            target.steward_cancelled = True
        return [{"kind": "member.recovery_cancelled", "old": old, "by": tx.signer}]

    def recovery_complete(self, tx, me, args, now):
        old = args["old"]
        recovery = self.recoveries.get(old)
        if recovery is None:
            raise Refused("not_found")
        if now < recovery.effective:
            raise Refused("invalid_state")
        del self.recoveries[old]
        self.members[old].frozen = False
        return [self.move(old, recovery.new)]

    def gov_propose(self, tx, me, args, now):
        action, action_args, expires = args["action"], args["args"], args["expires"]
        klass = self.klass(action, action_args)
        threshold = 0 if klass is None else THRESHOLDS[klass]
        if threshold == 0 or expires > now + MAX_EXPIRY_MS:
            raise Refused("invalid_state")
        if expires <= now:
            raise Refused("deadline_passed")
        events = [{"kind": "gov.proposed", "proposal": tx.tx_id, "action": action,
                   "args": action_args, "organisation": me.attrs["organisation"],
                   "expires": expires, "threshold": threshold}]
        # The proposer's organisation is the only one, and its approval counts at once.
        try:
            effects = self.act(action, b"", action_args, now)
        except Refused as refusal:
            return events + [{"kind": "gov.failed", "proposal": tx.tx_id,
                              "code": refusal.code, "info": refusal.info}]
        return events + [{"kind": "gov.enacted", "proposal": tx.tx_id,
                          "action": action}] + effects

    def task_post(self, tx, me, args, now):
        if args["task"] in self.tasks:
            raise Refused("exists")
        policy = self.policy(periods(now)[0])
        if args["deadline"] <= now:
            raise Refused("deadline_passed")
        self.check_hourly(policy, "21plus", args["reward"], args["minutes"])
        self.tasks[args["task"]] = Task(args["reward"], args["minutes"], args["slots"],
                                        args["deadline"])
        return [dict(args, kind="task.posted")]

    def task_claim(self, tx, me, args, now):
        task_id, citizen = args["task"], tx.signer
        task = self.tasks.get(task_id)
        if task is None:
            raise Refused("not_found")
        before = self.claims.get((task_id, citizen))
        if before == "submitted" or (before == "open" and now < task.deadline):
            raise Refused("exists")
        if before == "approved" or task.cancelled:
            raise Refused("invalid_state")
        policy = self.policy(periods(now)[0])
        if now >= task.deadline:
            raise Refused("deadline_passed")
        if self.taken(task_id) >= task.slots:
            raise Refused("task_full")
        self.check_hourly(policy, me.attrs["age_band"], task.reward, task.minutes)
        self.check_caps(policy, citizen, now, task.reward, self.reserved(citizen, now))
        self.claims[(task_id, citizen)] = "open"
        return [{"kind": "task.claimed", "task": task_id, "citizen": citizen,
                 "reserved": task.reward}]

    def task_withdraw(self, tx, me, args, now):
        task = self.tasks.get(args["task"])
        if task is None:
            raise Refused("not_found")
        state = self.claims.get((args["task"], tx.signer))
        if state not in ("open", "submitted") or (state == "open" and now >= task.deadline):
            raise Refused("not_found")
        if state == "submitted":
            raise Refused("invalid_state")
        self.claims[(args["task"], tx.signer)] = "withdrawn"
        return [{"kind": "task.withdrawn", "task": args["task"], "citizen": tx.signer}]

    def task_submit(self, tx, me, args, now):
        task = self.tasks.get(args["task"])
        if task is None:
            raise Refused("not_found")
        state = self.claims.get((args["task"], tx.signer))
        if state not in ("open", "submitted"):
            raise Refused("not_found")
        if state == "submitted":
            raise Refused("invalid_state")
        if now >= task.deadline:
            raise Refused("deadline_passed")
        self.claims[(args["task"], tx.signer)] = "submitted"
        return [{"kind": "task.submitted", "task": args["task"], "citizen": tx.signer,
                 "proof": args["proof"]}]

    def _submitted(self, args) -> Task:
        task = self.tasks.get(args["task"])
        if task is None or args["citizen"] not in self.members:
            raise Refused("not_found")
        state = self.claims.get((args["task"], args["citizen"]))
        if state is None:
            raise Refused("not_found")
        if state != "submitted":
            raise Refused("invalid_state")
        return task

    def task_approve(self, tx, me, args, now):
        task, citizen = self._submitted(args), args["citizen"]
        policy = self.policy(periods(now)[0])
        self.check_caps(policy, citizen, now, task.reward, 0)
        _, month, year = periods(now)
        for period in (month, year):
            self.earned[(citizen, period)] = self.earned.get((citizen, period), 0) + task.reward
        self.cap_at_mint[(citizen, month)] = policy["monthly_cap"]
        self.cap_at_mint[(citizen, year)] = min(
            policy["yearly_cap"], policy.get("programme_yearly_cap", policy["yearly_cap"]))
        self.members[citizen].balance += task.reward
        self.minted += task.reward
        self.claims[(args["task"], citizen)] = "approved"
        return [{"kind": "task.approved", "task": args["task"], "citizen": citizen,
                 "minted": task.reward}]

    def task_reject(self, tx, me, args, now):
        self._submitted(args)
        self.claims[(args["task"], args["citizen"])] = "rejected"
        return [{"kind": "task.rejected", "task": args["task"], "citizen": args["citizen"],
                 "reason": args["reason"]}]

    def task_cancel(self, tx, me, args, now):
        task = self.tasks.get(args["task"])
        if task is None:
            raise Refused("not_found")
        if task.cancelled:
            raise Refused("invalid_state")
        released = sorted(k for k, s in self.claimants(args["task"]) if s == "open")
        for k in released:
            self.claims[(args["task"], k)] = "released"
        task.cancelled = True
        return [{"kind": "task.cancelled", "task": args["task"], "released": released}]

    def coin_spend(self, tx, me, args, now):
        to, amount = args["to"], args["amount"]
        payee = self.members.get(to)
        if payee is None or payee.role != "merchant" or not payee.active:
            raise Refused("not_a_merchant")
        if me.balance < amount:
            raise Refused("insufficient_funds")
        me.balance -= amount
        payee.balance += amount
        self.spends[tx.tx_id] = Spend(tx.signer, to, amount)
        return [{"kind": "coin.spent", "from": tx.signer, "to": to, "amount": amount,
                 "memo": args.get("memo", "")}]

    def coin_refund(self, tx, me, args, now):
        spend, amount = self.spends.get(args["spend"]), args["amount"]
        if spend is None or self.current(spend.payee) != tx.signer:
            raise Refused("not_found")
        if amount > spend.amount - spend.refunded:
            raise Refused("invalid_state")
        if me.balance < amount:
            raise Refused("insufficient_funds")
        to = self.current(spend.payer)
        me.balance -= amount
        self.members[to].balance += amount
        spend.refunded += amount
        return [{"kind": "coin.refunded", "from": tx.signer, "to": to, "amount": amount,
                 "spend": args["spend"]}]

    def coin_redeem(self, tx, me, args, now):
        if me.balance < args["amount"]:
            raise Refused("insufficient_funds")
        me.balance -= args["amount"]
        self.redeemed += args["amount"]
        self.payouts[tx.tx_id] = Payout(tx.signer, args["amount"])
        return [{"kind": "coin.redeemed", "merchant": tx.signer, "amount": args["amount"],
                 "payout": tx.tx_id}]

    def payout_confirm(self, tx, me, args, now):
        payout = self.payouts.get(args["payout"])
        if payout is None:
            raise Refused("not_found")
        if payout.status != "pending":
            raise Refused("invalid_state")
        payout.status = "paid"
        return [{"kind": "payout.confirmed", "payout": args["payout"],
                 "reference": args["reference"]}]
