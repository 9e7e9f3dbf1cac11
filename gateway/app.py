"""The gateway: the aiohttp application every validator serves to apps.

It turns HTTP into calls on the node's small interface (`submit`, `wait`, `result`,
`is_pending`, `status`, and the read-only `store`) and back; the rules live in chaincode,
the ordering in consensus.
"""
from __future__ import annotations

import base64

from aiohttp import web

from gateway import transactions
from gateway.problems import Problem, problems


def block_json(record, checkpoint=None) -> dict:
    return {"height": record.height, "hash": record.hash.hex(),
            "prev_hash": record.prev_hash.hex(), "time": record.time_ms, "view": record.view,
            "batch_digest": record.batch_digest.hex(), "state_root": record.state_root.hex(),
            "results_root": record.results_root.hex(),
            "txs": [base64.b64encode(e).decode() for e in record.envelopes],
            "certificate": {"view": record.view,
                            "signatures": [{"validator": i, "signature": s.hex()}
                                           for i, s in record.certificate]},
            "checkpoint": checkpoint}


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app["node"].status())


async def get_block(request: web.Request) -> web.Response:
    store = request.app["node"].store
    raw = request.match_info["height"]
    if not raw.isdigit() or len(raw) > 19:
        raise Problem(404, "not_found", "A block height is a whole number from 1.")
    record = store.block(int(raw))
    if record is None:
        raise Problem(404, "not_found", f"There is no block at height {raw} yet.")
    return web.json_response(block_json(record))


def make_app(node) -> web.Application:
    app = web.Application(middlewares=[problems],
                          client_max_size=transactions.MAX_BATCH_BODY)
    app["node"] = node
    app.router.add_get("/v1/status", get_status)
    app.router.add_post("/v1/tx", transactions.post_tx)
    app.router.add_post("/v1/txs", transactions.post_txs)
    app.router.add_get("/v1/tx/{tx_id}", transactions.get_tx)
    app.router.add_get("/v1/blocks/{height}", get_block)
    return app
