"""Where a replica's validator set ends, for the Replica and the Follower alike: its
last height is the one before the next set's first, once the ledger has scheduled a next
set (consensus/handover.py)."""
from __future__ import annotations

from consensus.api import ValidatorSet


class SetBound:
    next_set: ValidatorSet | None
    executed_height: int

    @property
    def last_height(self) -> int | None:
        """The last height this set orders, once the next set is known."""
        return None if self.next_set is None else self.next_set.first_height - 1

    @property
    def set_over(self) -> bool:
        """Every height of this set has run here: the next set's replica takes over."""
        return self.next_set is not None and self.executed_height >= self.last_height
