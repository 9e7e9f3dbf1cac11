"""The events the chaincode emits: every kind, its fields, and which fields name accounts.

The one table for what reads the log: the store's indexes (node/store.py), the `kind`
filter of /v1/events and its OpenAPI enum (gateway/chainlog.py), /v1/stats
(gateway/stats.py). An event is a map with "kind" and the fields below; keys, hashes and
proofs are bytes, amounts int, text str (docs/chaincode.md, "Results and events").
"""
from __future__ import annotations

from . import args as _schema

# kind -> (fields always present, fields present only sometimes); "kind" aside. In the
# order the API lists them (the OpenAPI enum of /v1/events' `kind`).
FIELDS = {
    "member.registered": (("key", "role"), ("age_band", "area", "name", "organisation")),
    "member.updated": (("key",), ("age_band", "area")),
    "member.revoked": (("key",), ()),
    "member.recovered": (("old", "new", "balance"), ()),
    "policy.set": (("year", "hourly_cap_21plus", "hourly_cap_under21", "monthly_cap",
                    "yearly_cap"), ("programme_yearly_cap",)),
    "task.posted": (("task", "title", "area", "domain", "reward", "minutes", "slots",
                     "deadline"), ()),
    "task.claimed": (("task", "citizen", "reserved"), ()),
    "task.withdrawn": (("task", "citizen"), ()),
    "task.submitted": (("task", "citizen", "proof"), ()),
    "task.approved": (("task", "citizen", "minted"), ()),
    "task.rejected": (("task", "citizen", "reason"), ()),
    "task.cancelled": (("task", "released"), ()),
    "coin.spent": (("from", "to", "amount", "memo"), ()),
    "coin.refunded": (("from", "to", "amount", "spend"), ()),
    "coin.redeemed": (("merchant", "amount", "payout"), ()),
    "payout.confirmed": (("payout", "reference"), ()),
    "member.recovery_opened": (("old", "new", "effective"), ()),
    "member.recovery_cancelled": (("old", "by"), ()),
    "gov.proposed": (("proposal", "action", "args", "organisation", "expires", "threshold"),
                     ("reason",)),
    "gov.approved": (("proposal", "organisation", "approvals"), ()),
    "gov.enacted": (("proposal", "action"), ()),
    "gov.failed": (("proposal", "code", "info"), ()),
    "gov.withdrawn": (("proposal",), ()),
    "constitution.set": (("organisations", "recovery_delay_ms", "thresholds"), ()),
    "rules.activate": (("version", "height"), ()),
    "validators.set": (("validators", "from"), ()),
}
KINDS = tuple(FIELDS)

# Fields that name an account (a 32-byte key), in any event that has them. `by` of
# member.recovery_cancelled is the cancelling key, or the text "governance": not a key.
ACCOUNT_FIELDS = ("key", "old", "new", "citizen", "from", "to", "merchant", "by")
# kind -> its field that holds a list of accounts
ACCOUNT_LISTS = {"task.cancelled": "released"}
# Events whose `args` (a governed action's) name accounts too: a gov.proposed shows in
# the history of the keys its action registers, revokes or recovers.
ARGS_EVENTS = frozenset(("gov.proposed",))
# the roles a member.registered names (`role`), in the order of chaincode/args.py
ROLES = _schema.ROLES


def accounts(event: dict) -> set[bytes]:
    """Every account (32-byte key) that `event` names: its history shows the event."""
    found = set()
    for name in ACCOUNT_FIELDS:
        value = event.get(name)
        if type(value) is bytes and len(value) == 32:
            found.add(value)
    kind = event.get("kind")
    listed = ACCOUNT_LISTS.get(kind)
    for value in event.get(listed, ()) if listed is not None else ():
        if type(value) is bytes:
            found.add(value)
    args = event.get("args") if kind in ARGS_EVENTS else None
    if type(args) is dict:
        found.update(v for v in args.values() if type(v) is bytes and len(v) == 32)
    return found


def payout_id(event: dict) -> bytes | None:
    """The raw id of the payout a coin.redeemed or payout.confirmed is about: payout ids
    are transaction ids, hex text in args and events, raw bytes in keys."""
    value = event.get("payout")
    if type(value) is bytes and len(value) == 32:
        return value
    if type(value) is str and len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            return None
    return None
