"""From one validator set to the next. A set orders the heights up to the one before
the next set's first; once a replica (or follower) has run that last height, the driver
asks for its successor: the next set's Replica if this validator is in it, else a
Follower. The successor starts from the block every member ran last (the next set's
base, consensus/certificates.py), takes over the keys already ordered and the requests
still waiting, and drops whatever the store held of the earlier set's replica
(consensus/durable.py). Views count afresh from 0 under each set."""
from __future__ import annotations

import dataclasses

from consensus.api import Crypto, Inspect
from consensus.config import Config
from consensus.follower import Follower
from consensus.replica import Replica


def next_config(old: Replica | Follower) -> Config:
    assert old.set_over
    return dataclasses.replace(old.config, validators=tuple(old.next_set.keys),
                               first_height=old.next_set.first_height,
                               base_hash=old.executed_hash)


def successor(old: Replica | Follower, key: bytes, crypto: Crypto, inspect: Inspect,
              restored: list[tuple[bytes, bytes]]) -> Replica | Follower:
    """The replica of the next set for the validator with public `key` (`crypto` signs
    with its key and verifies by the next set's numbering), or a Follower if the next
    set leaves it out. `restored`: what its consensus store holds now."""
    config = next_config(old)
    ordered, waiting = old.handover()
    if key not in config.validators:
        return Follower(config, crypto, old.executed_height, old.executed_hash,
                        old.block_time_ms, ordered_keys=ordered)
    new = Replica(config, config.validators.index(key), crypto, inspect, restored,
                  old.executed_height, old.executed_hash, old.block_time_ms,
                  ordered_keys=ordered)
    if waiting:
        new.submit(waiting)
    return new
