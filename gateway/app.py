"""The gateway: the aiohttp application every validator serves to apps.

It turns HTTP into calls on the node's small interface (gateway/nodeapi.py: `submit`,
`wait`, `result`, `unexecuted`, `status`, the read-only `store`, and `listeners` for
executed blocks) and back; the rules live in chaincode, the ordering in consensus.
docs/api.md describes it for app developers and /v1/openapi.json for machines.
"""
from __future__ import annotations

import base64
import json
import time

from aiohttp import web

from chaincode import queries
from chaincode.periods import periods
from gateway.appkeys import AGGREGATES, APP_PAGES, CLOCK_MS, FEED, METRICS, NODE, PAGES, \
    STREAMS, TOKENS
from gateway import chainlog, governance, openapi, pages, reads, transactions
from gateway.auth import Tokens
from gateway.feed import Feed
from gateway.metrics import Metrics, get_metrics
from gateway.nodeapi import InProcess, NodeApi, NodeUnavailable
from gateway.params import query
from gateway.problems import problem_response, problems
from gateway.stats import Aggregates, get_stats
from gateway.streams import StreamSlots

DEFAULT_MAX_STREAMS = 256          # live event streams one node serves at once
CORS_HEADERS = "Authorization, Content-Type, Last-Event-ID"


async def get_status(request: web.Request) -> web.Response:
    query(request)
    node = request.app[NODE]
    try:
        status = await node.status()
    except NodeUnavailable:
        status = node.offline_status()
    status.pop("view_changes", None)
    status.pop("refusals", None)
    status["warnings"] = status.get("warnings", []) + status_warnings(
        node, status, time.time_ns() // 1_000_000)
    return web.json_response(status)


def status_warnings(node, status: dict, now_ms: int) -> list[str]:
    """Plain sentences for an operator: no quorum of linked validators, peers down,
    partners' faults, a rules version due that this validator lacks, this validator
    outside the set in force or leaving it, a cap policy missing or carried over, and
    from 1 November a coming year without one."""
    warnings = []
    quorum = status.get("quorum")
    if quorum is not None and quorum["linked"] < quorum["needed"]:
        warnings.append(f"no quorum: this validator reaches {quorum['linked']} of the "
                        f"{quorum['needed']} validators needed "
                        f"({', '.join(quorum['missing'])} not connected); writes cannot "
                        f"be decided")
    warnings += [f"validator {v['name']} is not connected" for v in status["validators"]
                 if not v["connected"] and v["name"] != status["node"]]
    for name, kinds in sorted(status.get("faults", {}).items()):
        seen = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        warnings.append(f"validator {name} sent messages no correct validator sends "
                        f"({seen}): see `stadsmunt node evidence`")
    rules = status.get("rules")
    pending = rules and rules["pending"]
    if pending and pending["version"] not in rules["runs"]:
        warnings.append(f"rules version {pending['version']} is due from height "
                        f"{pending['height']} and this validator does not run it: install a "
                        f"stadsmunt that does before then, or it stops at that height")
    validator_set = status.get("validator_set")
    if validator_set is not None:
        coming_set = validator_set["pending"]
        node_name = status["node"]
        if not validator_set["member"]:
            joins = coming_set is not None and node_name in coming_set["validators"]
            warnings.append("this validator is not in the validator set in force: it "
                            "follows the chain and orders nothing" +
                            (f" until it joins at height {coming_set['from']}" if joins
                             else ""))
        elif coming_set is not None and node_name not in coming_set["validators"]:
            warnings.append(f"this validator leaves the validator set at height "
                            f"{coming_set['from']} (validators.set)")
    year = periods(now_ms)[0]
    coming = queries.coming_year_unset(node.store, now_ms)
    if coming is not None:
        warnings.append(f"there is no cap policy for {coming} yet: decide one before 1 "
                        f"January, or this year's carries over")
    found = queries.policy_for_year(node.store, year)
    if found is None:
        warnings.append(f"there is no cap policy for {year}: nothing can be posted, "
                        "claimed or approved")
    elif found["fallback"]:
        warnings.append(f"there is no cap policy for {year}; the {found['from_year']} "
                        "policy applies")
    return warnings


def _path_exists(request: web.Request) -> bool:
    # OPTIONS has no handler of its own: a known path answers "method not allowed"
    missing = request.match_info.http_exception
    return missing is None or missing.status == 405


def cors(origins: tuple[str, ...]):
    allowed = frozenset(origins)

    def allows(origin: str | None) -> bool:
        return origin is not None and ("*" in allowed or origin in allowed)

    @web.middleware
    async def middleware(request: web.Request, handler):
        origin = request.headers.get("Origin")
        preflight = request.method == "OPTIONS" and \
            "Access-Control-Request-Method" in request.headers and \
            _path_exists(request)
        if preflight:
            if not allows(origin):
                return problem_response(403, "forbidden",
                                        "This origin may not call this gateway.")
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "600"})
        response = await handler(request)
        if allows(origin) and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            # joined, not replaced: an answer in the reader's language varies by it too
            vary = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
            response.headers["Vary"] = ", ".join(["Origin"] + [v for v in vary if v != "Origin"])
        return response
    return middleware


def make_app(node, max_streams: int = DEFAULT_MAX_STREAMS, clock_ms=None) -> web.Application:
    """The application over `node`: a gateway/nodeapi.py NodeApi (LinkedNode in a gateway
    process), or a Validator of this process, which is then served in process."""
    clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
    if not isinstance(node, NodeApi):
        node = InProcess(node)
    origins = tuple(getattr(getattr(node, "config", None), "cors_origins", ()) or ())
    app = web.Application(middlewares=[cors(origins), problems],
                          client_max_size=transactions.MAX_BATCH_BODY)
    app[NODE] = node
    app[CLOCK_MS] = clock_ms
    app[TOKENS] = Tokens(node.chain, node.genesis, clock_ms)
    app[METRICS] = Metrics(node)
    app[FEED] = feed = Feed(node, app[METRICS])
    app[AGGREGATES] = Aggregates(node.store)
    app[STREAMS] = StreamSlots(max_streams)
    app[PAGES] = pages.files()
    app[APP_PAGES] = pages.app_files()
    node.listeners.append(feed.on_batch)

    async def detach(app: web.Application) -> None:
        if feed.on_batch in node.listeners:
            node.listeners.remove(feed.on_batch)
        node.close()
    app.on_cleanup.append(detach)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


async def get_genesis(request: web.Request) -> web.Response:
    """The chain's genesis: the document (as in genesis.json), its hash, and its canonical
    bytes (base64), which are what the hash is over, so an auditor who pins the hash can
    take the rest from any gateway."""
    query(request)
    genesis = request.app[NODE].genesis
    body = json.loads(genesis.to_json())
    body["hash"] = genesis.hash().hex()
    body["canonical"] = base64.b64encode(genesis.canonical()).decode("ascii")
    return web.json_response(body)


async def get_openapi(request: web.Request) -> web.Response:
    query(request)
    return web.json_response(openapi.document())


ROUTES = (
    ("GET", "/v1/status", get_status),
    ("GET", "/v1/genesis", get_genesis),
    ("POST", "/v1/tx", transactions.post_tx),
    ("POST", "/v1/txs", transactions.post_txs),
    ("GET", "/v1/tx/{tx_id}", transactions.get_tx),
    ("GET", "/v1/accounts/{key}", reads.get_account),
    ("GET", "/v1/accounts/{key}/history", reads.get_history),
    ("GET", "/v1/accounts/{key}/statement", reads.get_statement),
    ("GET", "/v1/tasks", reads.get_tasks),
    ("GET", "/v1/tasks/{task}", reads.get_task),
    ("GET", "/v1/merchants", reads.get_merchants),
    ("GET", "/v1/payouts", reads.get_payouts),
    ("GET", "/v1/constitution", governance.get_constitution),
    ("GET", "/v1/proposals", governance.get_proposals),
    ("GET", "/v1/proposals/{id}", governance.get_proposal),
    ("GET", "/v1/blocks", chainlog.get_blocks),
    ("GET", "/v1/blocks/{height}", chainlog.get_block),
    ("GET", "/v1/events", chainlog.get_events),
    ("GET", "/v1/events/stream", chainlog.get_stream),
    ("GET", "/v1/stats", get_stats),
    ("GET", "/v1/openapi.json", get_openapi),
    ("GET", "/v1/policies/{year}", reads.get_policy),
    ("GET", "/metrics", get_metrics),
    ("GET", "/", pages.get_dashboard),
    ("GET", "/web/{name}", pages.get_file),
    ("GET", "/app/", pages.get_wallet),
    ("GET", "/app/{name:[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)?}", pages.get_wallet_file),
)
