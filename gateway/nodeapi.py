"""The node as the gateway's handlers see it, in one of two wirings.

- `LinkedNode` (gateway/linked.py): the production wiring. The gateway runs in a process
  of its own, reads the ledger from LMDB read-only and reaches its validator over the
  local link (node/link.py), so hostile HTTP never delays consensus.
- `InProcess` (here): the validator object itself, in this process and event loop. For
  tests and for `[gateway] workers = 0` in development.

Both offer the same small interface: `chain`, `genesis`,
`genesis_hash`, `config`, the read-only `store`, `listeners` (called with a
node.linkwire.Notice per executed block), and `submit`, `wait`, `result`, `unexecuted`,
`status`. `submit` and `status` raise NodeUnavailable while the validator cannot be
reached; `status` answers a map as Validator.status does, with `view_changes` and
`refusals` (admission's, by code) added.
"""
from __future__ import annotations

import structlog

from node.link import notice_of
from node.linkwire import Notice

log = structlog.get_logger("stadsmunt.gateway")


class NodeUnavailable(Exception):
    """The validator cannot be reached from this gateway just now."""


class NodeApi:
    chain: str
    listeners: list

    def _notify(self, notice: Notice) -> None:
        for listener in list(self.listeners):
            try:
                listener(notice)
            except Exception:       # one listener's bug must not stop the others
                log.exception("listener_failed", height=notice.height)

    def close(self) -> None:
        pass


class InProcess(NodeApi):
    def __init__(self, validator):
        self.validator = validator
        self.chain = validator.chain
        self.genesis, self.genesis_hash = validator.genesis, validator.genesis_hash
        self.config, self.store = validator.config, validator.store
        self.listeners: list = []
        validator.listeners.append(self._on_batch)

    def close(self) -> None:
        if self._on_batch in self.validator.listeners:
            self.validator.listeners.remove(self._on_batch)

    def _on_batch(self, batch) -> None:
        if self.listeners:
            self._notify(notice_of(batch, self.store))

    async def submit(self, envelopes: list[bytes]):
        return self.validator.submit(envelopes)

    async def wait(self, tx_id: str, timeout_s: float) -> dict | None:
        return await self.validator.wait(tx_id, timeout_s)

    def result(self, tx_id: str) -> dict | None:
        return self.validator.result(tx_id)

    async def unexecuted(self, tx_id: str) -> str:
        return self.validator.unexecuted(tx_id)

    async def status(self) -> dict:
        status = self.validator.status()
        status["view_changes"] = self.validator.view_changes
        status["refusals"] = dict(self.validator.refusals)
        return status
