"""The ledger's two money invariants, followed from the events alone (not from the
chaincode's own counters, which they are then compared with):

- supply: minted (task.approved) minus redeemed (coin.redeemed) is what the members hold,
  and equals the state's totals;
- caps: after every approval, a citizen's earnings in the block's local month and year are
  within the monthly cap and the yearly cap (the lower of yearly and programme) of the
  policy in force at that block (that year's policy, else the latest earlier one). At the
  end every earnings entry of the state equals the total followed here, so no earning
  escaped the check.
"""
from __future__ import annotations

from chaincode import queries
from chaincode.periods import periods


class InvariantBroken(Exception):
    def __init__(self, height: int, reason: str):
        super().__init__(reason)
        self.height = height
        self.reason = reason


class Invariants:
    def __init__(self, policies: list[dict]):
        self.policies = {p["year"]: dict(p) for p in policies}
        self.minted = 0
        self.redeemed = 0
        self.earned: dict[tuple[bytes, str], int] = {}

    def _policy(self, year: int) -> dict | None:
        years = [y for y in self.policies if y <= year]
        return self.policies[max(years)] if years else None

    def block(self, height: int, time_ms: int, events: list[dict]) -> None:
        """Follow the events of one block (those of its ok results, in order)."""
        year = month = None
        for event in events:
            kind = event.get("kind")
            if kind == "task.approved":
                if year is None:
                    year, month, year_period = periods(time_ms)
                self._approved(height, year, month, year_period, event)
            elif kind == "coin.redeemed":
                self.redeemed += event["amount"]
            elif kind == "policy.set":
                self.policies[event["year"]] = {k: v for k, v in event.items() if k != "kind"}
            elif kind == "member.recovered":
                self._recovered(event["old"], event["new"])

    def _approved(self, height: int, year: int, month: str, year_period: str,
                  event: dict) -> None:
        citizen, minted = event["citizen"], event["minted"]
        self.minted += minted
        policy = self._policy(year)
        if policy is None:
            raise InvariantBroken(height, f"coins minted to {citizen.hex()} with no cap policy "
                                          f"in force for {year}")
        yearly = policy["yearly_cap"]
        if "programme_yearly_cap" in policy:
            yearly = min(yearly, policy["programme_yearly_cap"])
        for period, cap, name in ((month, policy["monthly_cap"], "monthly"),
                                  (year_period, yearly, "yearly")):
            total = self.earned.get((citizen, period), 0) + minted
            self.earned[(citizen, period)] = total
            if total > cap:
                raise InvariantBroken(height, f"citizen {citizen.hex()} earned {total} cents in "
                                              f"{period}, above the {name} cap of {cap}")

    def _recovered(self, old: bytes, new: bytes) -> None:
        # recovery moves the earnings with the account (chaincode members.recover)
        for (citizen, period) in [k for k in self.earned if k[0] == old]:
            self.earned[(new, period)] = (self.earned.get((new, period), 0)
                                          + self.earned.pop((citizen, period)))

    def finish(self, height: int, state) -> dict:
        """Check the followed totals against the final state; answer the totals."""
        totals = queries.totals(state)
        if totals["minted"] != self.minted or totals["redeemed"] != self.redeemed:
            raise InvariantBroken(height, f"the state's totals (minted {totals['minted']}, "
                                          f"redeemed {totals['redeemed']}) differ from the "
                                          f"events (minted {self.minted}, redeemed "
                                          f"{self.redeemed})")
        held, members = 0, {}
        for record in queries.members(state):
            held += record["balance"]
            if "recovered_to" not in record:
                members[record["role"]] = members.get(record["role"], 0) + 1
        if held != self.minted - self.redeemed:
            raise InvariantBroken(height, f"members hold {held} cents but minted minus "
                                          f"redeemed is {self.minted - self.redeemed}")
        recorded = queries.earnings_entries(state)
        followed = {k: v for k, v in self.earned.items() if v}
        if recorded != followed:
            wrong = sorted(set(recorded.items()) ^ set(followed.items()))[0]
            raise InvariantBroken(height, f"the state's earnings of {wrong[0][0].hex()} in "
                                          f"{wrong[0][1]} differ from the approvals")
        tasks = queries.task_count(state)
        return {"minted": self.minted, "redeemed": self.redeemed,
                "circulating": self.minted - self.redeemed,
                "members": dict(sorted(members.items())), "tasks": tasks,
                "citizen_periods": len(followed)}
