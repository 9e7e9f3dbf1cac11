"""The Heerlen story that `stadsmunt demo` plays on a fresh network, through the gateways
as the apps would: staff on the municipality's validator, citizens and merchants on the
partners' ones (every gateway is a full door to the same chain).

Names of people are kept here, off-chain, as the municipality keeps them; the chain only
ever sees their keys and the attributes the rules need.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from chaincode.periods import periods
from gateway.client import Client, now_ms
from node.keys import Keypair, write_key_file
from ops.client_rows import euros

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
    total = 9
    year = periods(now_ms())[0]

    step(say, 1, total, f"the city sets its cap policy for {year}")
    await staff.send("policy.set", {
        "year": year, "hourly_cap_21plus": 560, "hourly_cap_under21": 330,
        "monthly_cap": 21_000, "yearly_cap": 210_000, "programme_yearly_cap": 150_000})
    say("  per hour 5.60 (21 and over) / 3.30 (under 21), per month 210.00, per year "
        "2,100.00, and Heerlen's own programme cap of 1,500.00 a year")

    step(say, 2, total, "the municipality registers a reviewer, five citizens and four "
                        "merchants (one batch)")
    regs = [(staff.key, "member.register", {"key": _person(cast, keys_dir, "mirjam"),
                                            "role": "reviewer"})]
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
    say(f"  reviewer Mirjam (city hall)          key {cast.key('mirjam').hex()[:16]}...")

    step(say, 3, total, "tasks are posted")
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

    step(say, 4, total, "citizens claim tasks through the CBS gateway")
    await batch(citizens, [(cast.people[c], "task.claim", {"task": t}) for c, t in WORK],
                "claims")
    say(f"  {len(WORK)} claims taken; each reserves its reward against the citizen's caps")
    young = await refused(citizens, cast.people["fenna"], "task.claim",
                          {"task": "litter-walk"}, "hourly_rate_exceeded")
    say(f"  Fenna (under 21) tries the litter walk, 15.00 for 3 hours. The app shows:\n"
        f"    \"{young['detail']}\"")

    step(say, 5, total, "they do the work and submit a photo's hash as proof; the reviewer "
                        "decides")
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

    step(say, 6, total, "a claim refused by a cap")
    capped = await refused(citizens, cast.people["anouk"], "task.claim",
                           {"task": "cleanup-day"}, "cap_exceeded")
    info = capped["info"]
    say(f"  Anouk claims the clean-up day (56.00). Refused: cap_exceeded, the {info['cap']} "
        f"cap of {info['period']}, {euros(info['allowed'])} allowed. The app shows:\n"
        f"    \"{capped['detail']}\"")

    step(say, 7, total, "spending at local merchants (through the Brightlands gateway)")
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

    step(say, 8, total, "a refund")
    book_spend = answers[1]["tx_id"]
    await shops.send("coin.refund", {"spend": book_spend, "amount": 1_500},
                     cast.people["leesteken"])
    say("  Boekhandel Het Leesteken refunds Anouk 15.00 of her 40.00 (a book returned)")

    step(say, 9, total, "a redemption, and its payout confirmed by the town hall")
    redeemed = await shops.send("coin.redeem", {"amount": 2_000}, cast.people["kroon"])
    payout = redeemed["tx_id"]
    say(f"  Cafe De Kroon redeems 20.00: payout {payout[:16]}... pending")
    reference = "SEPA HRL-2026-000123"
    await staff.send("payout.confirm", {"payout": payout, "reference": reference})
    say(f"  the municipality pays 20.00 euros and confirms it: reference {reference!r}")
    return cast


def _person(cast: Cast, keys_dir: Path, name: str) -> bytes:
    """A new key for one person, kept in `keys_dir` so one can act as them afterwards."""
    keypair = Keypair.generate()
    write_key_file(keys_dir / f"{name}.key", keypair)
    cast.people[name] = keypair
    return keypair.public

