"""The Heerlen story that `stadsmunt demo` plays on a fresh network, through the gateways
as the apps would: staff on the municipality's validator, citizens and merchants on the
partners' ones (every gateway is a full door to the same chain). The partners' stewards
govern what no single key may do: next year's cap policy, a reviewer, a lost phone's
recovery at once; and a recovery an admin opened alone is seen frozen and cancelled.

Names of people are kept here, off-chain, as the municipality keeps them; the chain only
ever sees their keys and the attributes the rules need.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from chaincode.periods import periods
from client import Client, now_ms
from node.keys import Keypair, read_key_file, write_key_file
from ops.client_rows import ZONE_NAME, city_time, euros

DAY_MS = 24 * 3600 * 1000

CITIZENS = (("anouk", "21plus", "Meezenbroek"), ("daan", "21plus", "Hoensbroek"),
            ("fenna", "under21", "Heerlerheide"), ("sem", "21plus", "Centrum"),
            ("lotte", "21plus", "Centrum"))
MERCHANTS = (("kroon", "Cafe De Kroon"), ("leesteken", "Boekhandel Het Leesteken"),
             ("schunck", "Schunck Glaspaleis"), ("mertens", "Bakkerij Mertens"))
# task id, title, area, domain, reward (cents), minutes, slots
TASKS = (("festival-crew", "Crew at the Cultura Nova festival", "Centrum", "culture",
          15_680, 1_680, 4),
         ("repair-cafe", "Help at the repair cafe", "Hoensbroek", "prevention", 2_000, 240, 6),
         ("litter-walk", "Litter walk along the Caumerbeek", "Meezenbroek", "public-space",
          1_500, 180, 10),
         ("read-aloud", "Read aloud at a care home", "Heerlerheide", "care", 1_000, 240, 3),
         ("cleanup-day", "Neighbourhood clean-up day", "Meezenbroek", "public-space",
          5_600, 600, 20))
# (citizen, task) pairs that are claimed, submitted and approved, but the one rejected
WORK = (("anouk", "festival-crew"), ("anouk", "repair-cafe"), ("daan", "litter-walk"),
        ("daan", "repair-cafe"), ("fenna", "read-aloud"), ("sem", "litter-walk"),
        ("sem", "cleanup-day"), ("lotte", "litter-walk"))
REJECTED = ("daan", "repair-cafe", "The photo shows the cafe, but no repaired items.")


class StoryFailed(Exception):
    """The network did something the story did not expect: a finding, not a crash."""


@dataclass
class Cast:
    admin: Keypair
    people: dict[str, Keypair] = field(default_factory=dict)

    def key(self, name: str) -> bytes:
        return self.people[name].public


def step(say, number: int, total: int, text: str) -> None:
    say(f"\n[{number}/{total}] {text}")


def expect_all(answers: list[dict], what: str, wanted: str = "committed") -> None:
    wrong = [a for a in answers if a["status"] != wanted]
    if wrong:
        first = wrong[0]
        raise StoryFailed(f"{what}: {len(wrong)} not {wanted}, e.g. {first['status']} "
                          f"{first.get('code')}: {first.get('detail')}")


async def batch(client: Client, signed: list[tuple[Keypair, str, dict]], what: str) -> list:
    envelopes = [await client.sign(kind, args, signer) for signer, kind, args in signed]
    answers = await client.submit_many(envelopes, wait=True)
    expect_all(answers, what)
    return answers


async def refused(client: Client, signer: Keypair, kind: str, args: dict, code: str) -> dict:
    result = await client.send(kind, args, signer, check=False)
    if result.get("code") != code:
        raise StoryFailed(f"{kind} should have been refused with {code}, got "
                          f"{result.get('code')}: {result.get('detail')}")
    return result


async def play(staff: Client, citizens: Client, shops: Client, keys_dir: Path, say) -> Cast:
    """Plays the story; returns the cast (their key files are in `keys_dir`)."""
    cast = Cast(staff.key)
    total = TOTAL
    # each organisation's steward signs through its own gateway (VNG through the city's)
    doors = {"municipality": staff, "cbs": citizens, "brightlands": shops, "vng": staff}
    stewards = {org: read_key_file(keys_dir / f"steward-{org}.key") for org in doors}
    gov = Governance(doors, stewards, say)

    year = periods((await staff.status())["time"] or now_ms())[0] + 1   # the block time
    latest = await latest_policy(staff)
    policy = next_policy(latest, year)
    step(say, 1, total, f"the partners govern the cap policy for {year}: the municipality's "
                        f"steward proposes it, CBS and VNG approve")
    say(f"  indexed from the {latest['year']} policy: per hour "
        f"{euros(policy['hourly_cap_21plus'])} (21 and over) / "
        f"{euros(policy['hourly_cap_under21'])} (under 21), per month "
        f"{euros(policy['monthly_cap'])}, per year {euros(policy['yearly_cap'])}, and "
        f"Heerlen's own programme cap of {euros(policy['programme_yearly_cap'])} a year")
    await gov.decide("policy.set", policy, "municipality", ("cbs", "vng"),
                     f"the volunteer allowance for {year}, indexed")

    step(say, 2, total, "a reviewer for city hall, through governance (the municipality's "
                        "admin may no longer grant roles alone)")
    mirjam = _person(cast, keys_dir, "mirjam")
    refused_reviewer = await refused(staff, staff.key, "member.register",
                                     {"key": mirjam, "role": "reviewer"}, "unauthorized")
    say(f"  the admin tries alone -> unauthorized: \"{refused_reviewer['detail']}\"")
    await gov.decide("member.register", {"key": mirjam, "role": "reviewer"}, "municipality",
                     ("cbs", "brightlands"), "Mirjam reviews the volunteers' work")
    say(f"  reviewer Mirjam (city hall)          key {mirjam.hex()[:16]}...")

    step(say, 3, total, "the municipality registers five citizens and four merchants (one "
                        "batch; the admin alone may)")
    regs = []
    for name, band, area in CITIZENS:
        regs.append((staff.key, "member.register", {
            "key": _person(cast, keys_dir, name), "role": "citizen", "age_band": band,
            "area": area}))
    for name, shop in MERCHANTS:
        regs.append((staff.key, "member.register", {
            "key": _person(cast, keys_dir, name), "role": "merchant", "name": shop}))
    await batch(staff, regs, "registrations")
    for name, band, area in CITIZENS:
        say(f"  citizen {name.capitalize():<6} {band:<8} {area:<13} key "
            f"{cast.key(name).hex()[:16]}...  (the name stays off-chain)")
    for name, shop in MERCHANTS:
        say(f"  merchant {shop:<26} key {cast.key(name).hex()[:16]}...")

    await work_and_money(staff, citizens, shops, cast, say, 4)
    await lost_phone(gov, shops, cast, keys_dir, say, 11)
    await frozen_and_cancelled(staff, citizens, shops, gov, cast, keys_dir, say, 12)
    return cast


async def work_and_money(staff: Client, citizens: Client, shops: Client, cast: Cast, say,
                         first: int) -> None:
    """Tasks, claims, reviews, a capped claim, spending, a refund and a payout."""
    total = TOTAL
    step(say, first, total, "tasks are posted")
    deadline = now_ms() + 14 * DAY_MS
    await batch(staff, [(staff.key, "task.post", {
        "task": t, "title": title, "area": area, "domain": domain, "reward": reward,
        "minutes": minutes, "slots": slots, "deadline": deadline})
        for t, title, area, domain, reward, minutes, slots in TASKS], "tasks")
    for t, title, area, _d, reward, minutes, slots in TASKS:
        say(f"  {t:<14} {euros(reward):>7} for {minutes:>5} min, {slots:>2} slots: {title}")
    greedy = await refused(staff, staff.key, "task.post", {
        "task": "paint-benches", "title": "Paint the park benches", "area": "Centrum",
        "domain": "public-space", "reward": 5_000, "minutes": 60, "slots": 2,
        "deadline": deadline}, "hourly_rate_exceeded")
    say(f"  refused: 50.00 for one hour of bench painting -> {greedy['detail']}")

    step(say, first + 1, total, "citizens claim tasks through the CBS gateway")
    await batch(citizens, [(cast.people[c], "task.claim", {"task": t}) for c, t in WORK],
                "claims")
    say(f"  {len(WORK)} claims taken; each reserves its reward against the citizen's caps")
    young = await refused(citizens, cast.people["fenna"], "task.claim",
                          {"task": "litter-walk"}, "hourly_rate_exceeded")
    say(f"  Fenna (under 21) tries the litter walk, 15.00 for 3 hours. The app shows:\n"
        f"    \"{young['detail']}\"")

    step(say, first + 2, total, "they do the work and submit a photo's hash as proof; the "
                                "reviewer decides")
    await batch(citizens, [(cast.people[c], "task.submit", {
        "task": t, "proof": hashlib.sha256(f"photo of {c} at {t}".encode()).digest()})
        for c, t in WORK], "submissions")
    who, task, reason = REJECTED
    reviewer = cast.people["mirjam"]
    await batch(staff, [(reviewer, "task.approve", {"task": t, "citizen": cast.key(c)})
                        for c, t in WORK if (c, t) != (who, task)], "approvals")
    await staff.send("task.reject", {"task": task, "citizen": cast.key(who),
                                     "reason": reason}, reviewer)
    say(f"  {len(WORK) - 1} approved: coins minted; {who.capitalize()}'s {task} rejected: "
        f"\"{reason}\"")
    anouk = await citizens.account(cast.key("anouk"), cast.people["anouk"])
    month = anouk["earnings"]["month"]
    say(f"  Anouk has earned {euros(month['earned'])} in {month['period']}; "
        f"{euros(month['remaining'])} of the monthly limit is left")

    step(say, first + 3, total, "a claim refused by a cap")
    capped = await refused(citizens, cast.people["anouk"], "task.claim",
                           {"task": "cleanup-day"}, "cap_exceeded")
    info = capped["info"]
    say(f"  Anouk claims the clean-up day (56.00). Refused: cap_exceeded, the {info['cap']} "
        f"cap of {info['period']}, {euros(info['allowed'])} allowed. The app shows:\n"
        f"    \"{capped['detail']}\"")

    step(say, first + 4, total, "spending at local merchants (through the Brightlands "
                                "gateway)")
    spends = [("anouk", "kroon", 1_250, "coffee and vlaai"),
              ("anouk", "leesteken", 4_000, "two books"), ("sem", "kroon", 2_000, "lunch"),
              ("fenna", "schunck", 750, "exhibition ticket"), ("daan", "leesteken", 1_000, "")]
    answers = await batch(shops, [(cast.people[p], "coin.spend", {
        "to": cast.key(m), "amount": a, **({"memo": memo} if memo else {})})
        for p, m, a, memo in spends], "spends")
    for (p, m, a, memo), _ in zip(spends, answers):
        say(f"  {p.capitalize():<6} pays {dict(MERCHANTS)[m]:<26} {euros(a):>6}"
            f"{'  (' + memo + ')' if memo else ''}")
    peer = await refused(shops, cast.people["sem"], "coin.spend",
                         {"to": cast.key("lotte"), "amount": 500}, "not_a_merchant")
    say(f"  Sem tries to pay Lotte 5.00 -> {peer['detail']}")
    await shops.send("coin.spend", {"to": cast.key("mertens"), "amount": 1_000,
                                    "memo": "vlaai for the weekend"}, cast.people["kroon"])
    say("  Cafe De Kroon pays Bakkerij Mertens 10.00 (merchants may pay merchants)")

    step(say, first + 5, total, "a refund")
    book_spend = answers[1]["tx_id"]
    await shops.send("coin.refund", {"spend": book_spend, "amount": 1_500},
                     cast.people["leesteken"])
    say("  Boekhandel Het Leesteken refunds Anouk 15.00 of her 40.00 (a book returned)")

    step(say, first + 6, total, "a redemption, and its payout confirmed by the town hall")
    redeemed = await shops.send("coin.redeem", {"amount": 2_000}, cast.people["kroon"])
    payout = redeemed["tx_id"]
    say(f"  Cafe De Kroon redeems 20.00: payout {payout[:16]}... pending")
    reference = "SEPA HRL-2026-000123"
    await staff.send("payout.confirm", {"payout": payout, "reference": reference})
    say(f"  the municipality pays 20.00 euros and confirms it: reference {reference!r}")


async def lost_phone(gov: "Governance", shops: Client, cast: Cast, keys_dir: Path, say,
                     number: int) -> None:
    """Lotte's phone is lost: two organisations recover her key at once."""
    step(say, number, TOTAL, "Lotte lost her phone: recovered at once through governance "
                             "(two organisations)")
    old = cast.people["lotte"]
    new = _person(cast, keys_dir, "lotte-new")
    await gov.decide("member.recover", {"old": old.public, "new": new}, "municipality",
                     ("brightlands",), "Lotte showed her passport at the town hall")
    moved = await shops.account(new, cast.people["lotte-new"])
    say(f"  her new key {new.hex()[:16]}... holds her {euros(moved['balance'])} and her "
        f"earnings; the old key is revoked")
    await shops.send("coin.spend", {"to": cast.key("mertens"), "amount": 500,
                                    "memo": "a loaf"}, cast.people["lotte-new"])
    say("  Lotte pays Bakkerij Mertens 5.00 from her new phone")


async def frozen_and_cancelled(staff: Client, citizens: Client, shops: Client,
                               gov: "Governance", cast: Cast, keys_dir: Path, say,
                               number: int) -> None:
    """A recovery the citizen did not ask for: frozen at once, cancelled by a steward."""
    step(say, number, TOTAL, "a recovery Sem did not ask for: his key is frozen, and a "
                             "steward cancels it")
    sem = cast.people["sem"]
    caller = _person(cast, keys_dir, "caller")
    opened = await staff.recover(sem.public, caller)
    effective = next(e for e in opened["events"]
                     if e["kind"] == "member.recovery_opened")["effective"]
    say(f"  someone phones the town hall as Sem; the admin opens a recovery of his key to "
        f"the caller's.\n  It would take effect at {city_time(effective)} ({ZONE_NAME}); "
        f"from now on Sem's key is frozen")
    frozen = await refused(shops, sem, "coin.spend",
                           {"to": cast.key("kroon"), "amount": 500}, "frozen")
    say(f"  Sem pays Cafe De Kroon 5.00 -> refused: frozen. The app shows:\n"
        f"    \"{frozen['detail']}\"")
    mine = await citizens.account(sem.public, sem)
    if not mine["frozen"] or mine["recovery"] is None:
        raise StoryFailed(f"Sem's account should show the open recovery: {mine}")
    say(f"  Sem's app shows the open recovery (effective "
        f"{city_time(mine['recovery']['effective'])}); he did not ask for it and calls "
        f"the town hall")
    await citizens.cancel_recovery(sem.public, gov.stewards["cbs"])
    say("  CBS's steward cancels the recovery: Sem's key is unfrozen")
    again = await refused(staff, staff.key, "member.recover",
                          {"old": sem.public, "new": caller}, "invalid_state")
    say(f"  the admin tries to open it again -> {again['code']}: after a steward's cancel "
        f"only governance may recover Sem's key")
    await shops.send("coin.spend", {"to": cast.key("kroon"), "amount": 500,
                                    "memo": "coffee"}, sem)
    say("  Sem pays Cafe De Kroon 5.00")


class Governance:
    """The partners' stewards: one proposes, others approve, each step shown."""

    def __init__(self, doors: dict[str, Client], stewards: dict[str, Keypair], say):
        self.doors, self.stewards, self.say = doors, stewards, say

    async def decide(self, action: str, args: dict, proposer: str, approvers, reason: str):
        say = self.say
        result = await self.doors[proposer].propose(action, args, reason=reason,
                                                    signer=self.stewards[proposer])
        proposed = _event(result, "gov.proposed")
        proposal, threshold = proposed["proposal"], proposed["threshold"]
        say(f"  {ORGS[proposer]} proposes {action}: proposal {proposal[:16]}..., "
            f"1 of {threshold} organisations{self._outcome(result)}")
        for org in approvers:
            result = await self.doors[org].approve(proposal, self.stewards[org])
            count = _event(result, "gov.approved")["approvals"]
            say(f"  {ORGS[org]} approves: {count} of {threshold}{self._outcome(result)}")
        if not any(e["kind"] == "gov.enacted" for e in result["events"]):
            raise StoryFailed(f"{action} was not enacted: "
                              f"{[e['kind'] for e in result['events']]}")
        return result

    @staticmethod
    def _outcome(result: dict) -> str:
        for event in result["events"]:
            if event["kind"] == "gov.enacted":
                return f" -> enacted: it takes effect at height {result['height']}"
            if event["kind"] == "gov.failed":
                raise StoryFailed(f"the action failed: {event['code']} {event['info']}")
        return ""


ORGS = {"municipality": "the municipality", "cbs": "CBS", "brightlands": "Brightlands",
        "vng": "VNG"}
TOTAL = 12


def _event(result: dict, kind: str) -> dict:
    found = [e for e in result["events"] if e["kind"] == kind]
    if not found:
        raise StoryFailed(f"no {kind} in {[e['kind'] for e in result['events']]}")
    return found[0]


async def latest_policy(client: Client) -> dict:
    """The newest cap policy: genesis's, or a later one set since."""
    policies = (await client.get("/v1/genesis"))["policies"]
    policies += await client.events(kind="policy.set")
    return max(policies, key=lambda p: p["year"])


def next_policy(latest: dict, year: int) -> dict:
    """`latest` indexed a little (3 %): hourly caps to 5 cents, the others to euros."""
    def up(cents: int, step: int) -> int:
        return -(-cents * 103 // 100 // step) * step
    return {"year": year, "hourly_cap_21plus": up(latest["hourly_cap_21plus"], 5),
            "hourly_cap_under21": up(latest["hourly_cap_under21"], 5),
            "monthly_cap": up(latest["monthly_cap"], 100),
            "yearly_cap": up(latest["yearly_cap"], 100), "programme_yearly_cap": 150_000}


def _person(cast: Cast, keys_dir: Path, name: str) -> bytes:
    """A new key for one person, kept in `keys_dir` so one can act as them afterwards."""
    keypair = Keypair.generate()
    write_key_file(keys_dir / f"{name}.key", keypair)
    cast.people[name] = keypair
    return keypair.public

