"""The one way a transaction is refused: raise Reject(code, info)."""
from __future__ import annotations

# The contract's order: when several checks fail, the first in this list is the result.
CODES = ("duplicate", "unknown_kind", "invalid_args", "unknown_member", "revoked",
         "frozen", "unauthorized", "not_found", "exists", "invalid_state", "not_a_merchant",
         "deadline_passed", "task_full", "hourly_rate_exceeded", "cap_exceeded",
         "insufficient_funds")


class Reject(Exception):
    __slots__ = ("code", "info")

    def __init__(self, code: str, info: dict | None = None):
        assert code in CODES, code
        super().__init__(code)
        self.code = code
        self.info = info if info is not None else {}
