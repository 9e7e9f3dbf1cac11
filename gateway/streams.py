"""Slots for live event streams: a limit in total, per reading key and per client
address, so that one token or one machine cannot take every stream of a node."""
from __future__ import annotations

from collections import Counter

PER_KEY = 4               # streams one reading key may hold at once
PER_ADDRESS = 32          # streams one client address may hold (NAT and proxies share one)


class StreamSlots:
    def __init__(self, total: int, per_key: int = PER_KEY, per_address: int = PER_ADDRESS):
        assert total >= 1 and per_key >= 1 and per_address >= 1
        self.total, self.per_key, self.per_address = total, per_key, per_address
        self.open = 0
        self._keys: Counter[bytes] = Counter()
        self._addresses: Counter[str] = Counter()

    def refusal(self, key: bytes, address: str) -> str | None:
        """Why a stream for this key from this address may not open now, or None."""
        if self.open >= self.total:
            return "total"
        if self._keys[key] >= self.per_key:
            return "key"
        if self._addresses[address] >= self.per_address:
            return "address"
        return None

    def take(self, key: bytes, address: str) -> None:
        assert self.refusal(key, address) is None
        self.open += 1
        self._keys[key] += 1
        self._addresses[address] += 1

    def give_back(self, key: bytes, address: str) -> None:
        assert self._keys[key] > 0 and self._addresses[address] > 0 and self.open > 0
        self.open -= 1
        for counter, name in ((self._keys, key), (self._addresses, address)):
            counter[name] -= 1
            if not counter[name]:
                del counter[name]
