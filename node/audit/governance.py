"""The governance check: every governed effect took effect only with enough approvals
under the constitution then in force (docs/audit.md, "Governance").

It is followed from genesis (its organisations, stewards, admins and constitution) and
from the log alone, the events of each ok result and the signer of its envelope, and
uses none of the chaincode's governance code, so a bug there cannot hide itself. What
it follows: the constitution in force (constitution.set), every member's role, whether
it is active or frozen and a steward's organisation (member.registered, revoked,
recovered, recovery opened and cancelled), and every proposal (gov.proposed: action,
args, organisation; proposer = the signer) with its approvals (gov.approved:
organisation, signer, height). What it checks, in the words of its failures:

- a governed effect (policy.set; member.registered of any role; member.revoked of an
  admin, reviewer, auditor, steward or merchant; member.recovered other than an admin's
  recovery.complete; constitution.set; rules.activate; validators.set) occurs only after
  a gov.enacted in its own result, of a proposal whose action and args order exactly
  that effect, or as an admin's own transaction of that kind while its class's threshold
  is 0; a validators.set orders from c + M + 1 (c the first multiple of the checkpoint
  interval at or above its height, M the switch margin) and names only organisations of
  the constitution in force;
- at each gov.enacted and gov.failed the distinct organisations whose approval still
  counts (its key an active, unfrozen steward of that organisation, and the
  organisation in the constitution) reach the threshold in force; a change of
  organisation X's stewards has X among them whenever X has an active steward;
- a proposal is decided, approved or withdrawn only while open and unexpired (block
  time before `expires`), by the active stewards of the organisation named;
- a delayed recovery is opened by an admin of a citizen or merchant only, with
  `effective` the block time plus the delay in force, never again after a steward's
  cancel; it completes only while open and at or after `effective`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from node.audit import governed
from node.audit.governed import ACTION_OF, PRIVILEGED, short
from node.audit.invariants import InvariantBroken
from protocol.codec import jsonable


@dataclass(slots=True)
class Proposal:
    action: str
    args: dict
    klass: str
    organisation: str
    proposer: bytes
    expires: int
    height: int
    summary: str
    status: str = "open"
    closed: int = 0
    approvals: list = field(default_factory=list)      # (organisation, key, height)


class Governance:
    def __init__(self, genesis):
        law = genesis.constitution
        self.law = {"organisations": list(law["organisations"]),
                    "thresholds": dict(law["thresholds"]),
                    "recovery_delay_ms": law["recovery_delay_ms"]}
        self.members: dict[bytes, list] = {}       # key -> [role, active, organisation]
        self.stewards: dict[str, set] = {}         # organisation -> its active stewards
        self.frozen: set[bytes] = set()
        self.recoveries: dict[bytes, tuple] = {}   # old -> (new, effective)
        self.steward_cancelled: set[bytes] = set()
        self.proposals: dict[str, Proposal] = {}
        self.decisions: list[dict] = []
        for key in genesis.admins:
            self.members[key] = ["admin", True, None]
        for organisation in genesis.organisations:
            for key in organisation.stewards:
                self.members[key] = ["steward", True, organisation.id]
                self.stewards.setdefault(organisation.id, set()).add(key)
        self.handlers = {"gov.proposed": self._proposed, "gov.approved": self._approved,
                         "gov.enacted": self._decided, "gov.failed": self._decided,
                         "gov.withdrawn": self._withdrawn,
                         "member.recovery_opened": self._recovery_opened,
                         "member.recovery_cancelled": self._recovery_cancelled}
        for kind in ACTION_OF:
            self.handlers[kind] = self._effect
        self.checkpoint_interval = genesis.checkpoint_interval
        self.switch_margin = genesis.switch_margin()
        self.height = self.time_ms = 0
        self.tx = None
        self.enacted: Proposal | None = None

    def block(self, height: int, time_ms: int, done: list) -> None:
        """Follow one block: `done` holds (tx, events) of each ok result, in order."""
        self.height, self.time_ms = height, time_ms
        handlers = self.handlers
        for tx, events in done:
            self.tx, self.enacted = tx, None
            for event in events:
                handler = handlers.get(event["kind"])
                if handler is not None:
                    handler(event)

    def fail(self, reason: str):
        raise InvariantBroken(self.height, reason)

    # ---- who may sign, and whose approval counts ----

    def _is_admin(self, key: bytes) -> bool:
        m = self.members.get(key)
        return m is not None and m[0] == "admin" and m[1] and key not in self.frozen

    def _counts(self, organisation: str, key: bytes) -> bool:
        return (organisation in self.law["organisations"]
                and key in self.stewards.get(organisation, ()) and key not in self.frozen)

    def _steward_signs(self, organisation: str, doing: str) -> None:
        signer = self.tx.signer
        if not self._counts(organisation, signer):
            self.fail(f"{short(signer)} {doing} for {organisation} but is not an active "
                      f"steward of it")

    def _counting(self, p: Proposal) -> list[str]:
        orgs = []
        for organisation, key, _ in p.approvals:
            if organisation not in orgs and self._counts(organisation, key):
                orgs.append(organisation)
        return orgs

    def _role(self, key) -> str | None:
        m = self.members.get(key)
        return None if m is None else m[0]

    def _class_of(self, action: str, args: dict) -> str | None:
        if action in ("policy.set", "constitution.set", "validators.set", "rules.activate"):
            return action
        if action == "member.register":
            role = args.get("role")
            return "member.privileged" if role in PRIVILEGED else "member." + str(role)
        role = self._role(args.get("key" if action == "member.revoke" else "old"))
        if role in PRIVILEGED:
            return "member.privileged"
        if action == "member.recover" and role in ("citizen", "merchant"):
            return "member.recover"
        return "member.merchant" if action == "member.revoke" and role == "merchant" else None

    def _owner(self, p: Proposal) -> str | None:
        """The organisation whose stewards the proposal changes."""
        if p.action == "member.register":
            return p.args.get("organisation") if p.args.get("role") == "steward" else None
        if p.action in ("member.revoke", "member.recover"):
            m = self.members.get(p.args.get("key" if p.action == "member.revoke" else "old"))
            if m is not None and m[0] == "steward":
                return m[2]
        return None

    # ---- proposals ----

    def _open(self, pid: str, doing: str) -> Proposal:
        p = self.proposals.get(pid)
        if p is None:
            self.fail(f"proposal {pid[:8]} {doing} but was never proposed")
        if p.status != "open":
            closed = {"failed": "had failed"}.get(p.status, "was " + p.status)
            self.fail(f"proposal {pid[:8]} ({p.summary}) {doing} after it {closed} at "
                      f"height {p.closed}")
        if self.time_ms >= p.expires:
            self.fail(f"proposal {pid[:8]} ({p.summary}) {doing} after it expired (block "
                      f"time {self.time_ms}, expires {p.expires})")
        return p

    def _proposed(self, e: dict) -> None:
        tx, pid, action, args = self.tx, e["proposal"], e["action"], e["args"]
        if tx.kind != "gov.propose" or pid != tx.tx_id:
            self.fail(f"proposal {pid[:8]} appears in transaction {tx.tx_id[:8]} "
                      f"({tx.kind}), which is not its gov.propose")
        self._steward_signs(e["organisation"], f"proposes {action}")
        klass = self._class_of(action, args)
        summary = describe_action(action, args, self._role, self.law)
        if klass is None or klass not in self.law["thresholds"]:
            self.fail(f"proposal {pid[:8]} ({summary}) is of an action that is never governed")
        need = self.law["thresholds"][klass]
        if need == 0:
            self.fail(f"proposal {pid[:8]} ({summary}) is of class {klass}, which has "
                      f"threshold 0: the admin signs it directly")
        if e["threshold"] != need:
            self.fail(f"proposal {pid[:8]} ({summary}) states threshold {e['threshold']}; the "
                      f"constitution in force has {need} for {klass}")
        if e["expires"] <= self.time_ms:
            self.fail(f"proposal {pid[:8]} ({summary}) expires before it is proposed")
        self.proposals[pid] = Proposal(action, args, klass, e["organisation"], tx.signer,
                                       e["expires"], self.height, summary,
                                       approvals=[(e["organisation"], tx.signer, self.height)])

    def _approved(self, e: dict) -> None:
        tx, pid, organisation = self.tx, e["proposal"], e["organisation"]
        p = self._open(pid, "is approved")
        if tx.kind != "gov.approve" or tx.args.get("proposal") != pid:
            self.fail(f"an approval of proposal {pid[:8]} in a {tx.kind} that does not "
                      f"approve it")
        self._steward_signs(organisation, f"approves proposal {pid[:8]}")
        for org, key, _ in p.approvals:
            if org == organisation and self._counts(org, key):
                self.fail(f"{organisation} approves proposal {pid[:8]} a second time")
        p.approvals = [a for a in p.approvals if a[0] != organisation]
        p.approvals.append((organisation, tx.signer, self.height))
        if e["approvals"] != len(self._counting(p)):
            self.fail(f"the approval of proposal {pid[:8]} states {e['approvals']} approving "
                      f"organisations where {len(self._counting(p))} count")

    def _decided(self, e: dict) -> None:
        tx, pid = self.tx, e["proposal"]
        enacted = e["kind"] == "gov.enacted"
        mine = tx.tx_id if tx.kind == "gov.propose" else tx.args.get("proposal")
        if tx.kind not in ("gov.propose", "gov.approve") or pid != mine:
            self.fail(f"proposal {pid[:8]} is decided in transaction {tx.tx_id[:8]} "
                      f"({tx.kind}), which neither proposes nor approves it")
        doing = "takes effect" if enacted else "is decided (failed)"
        p = self._open(pid, doing)
        need = self.law["thresholds"][p.klass]
        counting = self._counting(p)
        if need == 0 or len(counting) < need:
            self.fail(f"proposal {pid[:8]} ({p.summary}) {doing} with the approval of "
                      f"{len(counting)} organisation(s) ({', '.join(counting) or 'none'}); "
                      f"the constitution in force needs {need} for {p.klass}")
        owner = self._owner(p)
        if owner is not None and owner not in counting and self.stewards.get(owner):
            self.fail(f"proposal {pid[:8]} ({p.summary}) changes the stewards of {owner} "
                      f"without {owner}'s approval")
        if enacted and e["action"] != p.action:
            self.fail(f"proposal {pid[:8]} ({p.summary}) is enacted as {e['action']}")
        p.status, p.closed = ("enacted" if enacted else "failed"), self.height
        self.decisions.append({
            "height": self.height, "proposal": pid, "action": p.action,
            "summary": p.summary, "args": jsonable(p.args), "organisation": p.organisation,
            "proposer": p.proposer.hex(), "proposed": p.height, "approvals": counting,
            "threshold": need, "outcome": p.status, "code": e.get("code")})
        if enacted:
            self.enacted = p

    def _withdrawn(self, e: dict) -> None:
        p = self._open(e["proposal"], "is withdrawn")
        if self.tx.kind != "gov.withdraw" or self.tx.args.get("proposal") != e["proposal"]:
            self.fail(f"proposal {e['proposal'][:8]} is withdrawn by a {self.tx.kind}")
        self._steward_signs(p.organisation, f"withdraws proposal {e['proposal'][:8]}")
        p.status, p.closed = "withdrawn", self.height

    # ---- effects ----

    def _effect(self, e: dict) -> None:
        if self.enacted is not None:
            governed.check_enacted(self, self.enacted, e)
        else:
            governed.check_direct(self, e)
        governed.apply_effect(self, e)

    def _recovery_opened(self, e: dict) -> None:
        governed.recovery_opened(self, e)

    def _recovery_cancelled(self, e: dict) -> None:
        governed.recovery_cancelled(self, e)


def describe_action(action: str, args: dict, role_of, law: dict) -> str:
    """A short line: "policy.set 2027", "member.register steward cbs 1a2b3c4d"."""
    if action == "policy.set":
        return f"policy.set {args.get('year')}"
    if action == "member.register":
        words = [action, str(args.get("role"))]
        if args.get("role") == "steward":
            words.append(str(args.get("organisation")))
        return " ".join(words + [short(args.get("key"))])
    if action == "member.revoke":
        return f"member.revoke {role_of(args.get('key'))} {short(args.get('key'))}"
    if action == "member.recover":
        return (f"member.recover {role_of(args.get('old'))} {short(args.get('old'))} -> "
                f"{short(args.get('new'))}")
    if action == "constitution.set":
        changes = [f"{k}={v}" for k, v in sorted(args.get("thresholds", {}).items())
                   if law["thresholds"].get(k) != v]
        organisations = args.get("organisations", law["organisations"])
        changes += [f"+{o}" for o in organisations if o not in law["organisations"]]
        changes += [f"-{o}" for o in law["organisations"] if o not in organisations]
        delay = args.get("recovery_delay_ms", law["recovery_delay_ms"])
        if delay != law["recovery_delay_ms"]:
            changes.append(f"recovery delay {delay} ms")
        return " ".join([action] + (changes or ["(no change)"]))
    return action
