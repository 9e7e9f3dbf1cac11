"""What every kind's handler sees: the buffered state and the block's time and periods."""
from __future__ import annotations

from dataclasses import dataclass

from .state import Overlay


@dataclass(frozen=True, slots=True)
class Context:
    view: Overlay
    height: int
    time_ms: int
    year: int          # the local (Europe/Amsterdam) calendar year of the block time
    month_period: str  # "YYYY-MM"
    year_period: str   # "YYYY"
    rules_version: int  # the rules version running this block
    switch_margin: int  # the least distance from a block to a switch it enacts
    checkpoint_interval: int  # K: a validator set enacted here orders from after a
                              # multiple of K (chaincode/validators.py)
