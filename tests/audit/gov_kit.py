"""A log with governance for the audit's tests: the ledger kit's genesis (one
organisation per validator, steward keys keypair("steward-" + name), the default
constitution: policy.set 3, member.privileged 3, member.recover 2, constitution.set 4)
and a script of proposals, approvals and recoveries signed by those stewards."""
from __future__ import annotations

import hashlib

import msgpack

from audit_kit import ADMIN
from chaincode import DEFAULT_POLICIES
from ledger_kit import CHAIN, HOUR_MS, T0, VALIDATOR_NAMES, keypair
from node.envelope import sign_tx

DAY_MS = 24 * HOUR_MS
STEWARDS = {name: keypair("steward-" + name) for name in VALIDATOR_NAMES}
REVIEWER, CBS_2 = keypair("reviewer"), keypair("steward-cbs-2")
CITIZEN, CITIZEN_2, CITIZEN_3 = keypair("gov-citizen"), keypair("gov-citizen-2"), \
    keypair("gov-citizen-3")
SHOP, SHOP_2, SHOP_3 = keypair("gov-shop"), keypair("gov-shop-2"), keypair("gov-shop-3")


def policy(year: int) -> dict:
    return dict(DEFAULT_POLICIES[-1], year=year)


def tx_id(envelope: bytes) -> str:
    return hashlib.sha256(msgpack.unpackb(envelope)[0]).hexdigest()


class Script:
    """Blocks of signed transactions, one hour apart unless told."""

    def __init__(self, admin=ADMIN):
        self.admin = admin
        self.blocks: list[tuple[int, list[bytes]]] = []
        self.time = T0
        self.nonce = 0

    def tx(self, pair, kind: str, **args) -> bytes:
        self.nonce += 1
        return sign_tx(pair, CHAIN, kind, args, nonce=self.nonce)

    def by_admin(self, kind: str, **args) -> bytes:
        return self.tx(self.admin, kind, **args)

    def block(self, *envelopes: bytes, after_ms: int = HOUR_MS) -> int:
        """Appends a block; answers its height."""
        self.time += after_ms
        self.blocks.append((self.time, list(envelopes)))
        return len(self.blocks)

    def propose(self, by: str, action: str, expires: int | None = None,
                **args) -> tuple[str, bytes]:
        """(proposal id, envelope) of a proposal by organisation `by`'s steward, for the
        next block."""
        if expires is None:
            expires = self.time + 7 * DAY_MS
        envelope = self.tx(STEWARDS[by], "gov.propose", action=action, args=args,
                           expires=expires)
        return tx_id(envelope), envelope

    def approve(self, organisation: str, proposal: str, steward=None) -> bytes:
        return self.tx(steward or STEWARDS[organisation], "gov.approve", proposal=proposal)


def governance_story(admin=ADMIN) -> tuple[list, list]:
    """(blocks, the decisions the audit must report as (height, summary, proposing
    organisation, approving organisations, outcome))."""
    s, expected = Script(admin), []
    p, e = s.propose("municipality", "policy.set", **policy(2027))
    s.block(e)
    s.block(s.approve("cbs", p))
    h = s.block(s.approve("brightlands", p))
    expected.append((h, "policy.set 2027", "municipality",
                     ["municipality", "cbs", "brightlands"], "enacted"))
    # a reviewer: three organisations in one block
    p, e = s.propose("vng", "member.register", key=REVIEWER.public, role="reviewer")
    h = s.block(e, s.approve("cbs", p), s.approve("municipality", p))
    expected.append((h, f"member.register reviewer {REVIEWER.public.hex()[:8]}", "vng",
                     ["vng", "cbs", "municipality"], "enacted"))
    # the same key again: the action's own check refuses it when the threshold is met
    p, e = s.propose("municipality", "member.register", key=REVIEWER.public, role="reviewer")
    h = s.block(e, s.approve("cbs", p), s.approve("vng", p))
    expected.append((h, f"member.register reviewer {REVIEWER.public.hex()[:8]}",
                     "municipality", ["municipality", "cbs", "vng"], "failed (exists)"))
    # a second steward of cbs: three organisations are not enough without cbs itself
    p, e = s.propose("municipality", "member.register", key=CBS_2.public, role="steward",
                     organisation="cbs")
    s.block(e, s.approve("brightlands", p), s.approve("vng", p))
    h = s.block(s.approve("cbs", p))
    expected.append((h, f"member.register steward cbs {CBS_2.public.hex()[:8]}",
                     "municipality", ["municipality", "brightlands", "vng", "cbs"],
                     "enacted"))
    # withdrawn, and expired (its late approval is refused): neither is a decision
    p, e = s.propose("vng", "policy.set", **policy(2028))
    s.block(e, s.tx(STEWARDS["vng"], "gov.withdraw", proposal=p))
    p, e = s.propose("brightlands", "policy.set", expires=s.time + 2 * HOUR_MS,
                     **policy(2029))
    s.block(e)
    s.block(s.approve("cbs", p, steward=CBS_2))
    # recoveries: one completed after the delay, one cancelled by a steward and then
    # recovered by governance (member.recover 2)
    s.block(s.by_admin("member.register", key=CITIZEN.public, role="citizen",
                       age_band="21plus", area="GMS"),
            s.by_admin("member.register", key=SHOP.public, role="merchant", name="Winkel"))
    s.block(s.by_admin("member.recover", old=CITIZEN.public, new=CITIZEN_2.public),
            s.by_admin("member.recover", old=SHOP.public, new=SHOP_2.public))
    s.block(s.tx(STEWARDS["cbs"], "recovery.cancel", old=SHOP.public))
    s.block(s.by_admin("recovery.complete", old=CITIZEN.public), after_ms=3 * DAY_MS)
    p, e = s.propose("municipality", "member.recover", old=SHOP.public, new=SHOP_3.public)
    h = s.block(e, s.approve("cbs", p))
    expected.append((h, f"member.recover merchant {SHOP.public.hex()[:8]} -> "
                        f"{SHOP_3.public.hex()[:8]}", "municipality",
                     ["municipality", "cbs"], "enacted"))
    # the partners govern citizens' registration too (member.citizen 0 -> 1)
    thresholds = {"policy.set": 3, "member.citizen": 1, "member.merchant": 0,
                  "member.privileged": 3, "member.recover": 2, "validators.set": 3,
                  "rules.activate": 3, "constitution.set": 4}
    p, e = s.propose("municipality", "constitution.set", thresholds=thresholds)
    h = s.block(e, *(s.approve(o, p) for o in ("cbs", "brightlands", "vng")))
    expected.append((h, "constitution.set member.citizen=1", "municipality",
                     list(VALIDATOR_NAMES), "enacted"))
    p, e = s.propose("vng", "member.register", key=CITIZEN_3.public, role="citizen",
                     age_band="under21", area="GMS")
    h = s.block(s.by_admin("member.register", key=CITIZEN_3.public, role="citizen",
                           age_band="under21", area="GMS"), e)
    expected.append((h, f"member.register citizen {CITIZEN_3.public.hex()[:8]}", "vng",
                     ["vng"], "enacted"))
    # cbs's first steward leaves: not without cbs, whose second steward approves; the
    # leaver's later approval is refused (revoked)
    old_cbs = STEWARDS["cbs"].public
    p, e = s.propose("municipality", "member.revoke", key=old_cbs)
    s.block(e, s.approve("brightlands", p), s.approve("vng", p))
    h = s.block(s.approve("cbs", p, steward=CBS_2))
    expected.append((h, f"member.revoke steward {old_cbs.hex()[:8]}", "municipality",
                     ["municipality", "brightlands", "vng", "cbs"], "enacted"))
    p, e = s.propose("vng", "policy.set", **policy(2030))
    s.block(e, s.approve("cbs", p), s.approve("brightlands", p))
    h = s.block(s.approve("cbs", p, steward=CBS_2))
    expected.append((h, "policy.set 2030", "vng", ["vng", "brightlands", "cbs"], "enacted"))
    return s.blocks, expected


def codes(blocks) -> list[list[str]]:
    """The result codes of each block of a source's blocks."""
    return [[msgpack.unpackb(r, raw=False)["code"] for r in b.results] for b in blocks]
