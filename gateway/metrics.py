"""GET /metrics in the Prometheus text format, through prometheus-client, with one
registry per application (two validators in one test process do not share figures).

The validator's own figures (view, view changes, pending requests, peers) are asked of it
when scraped (`status`, over the local link when the gateway runs in a process of its
own); while it cannot be reached they keep their last values and
`stadsmunt_validator_reachable` is 0. The height is read from the ledger. Counts and
histograms are fed by gateway/feed.py as blocks execute: they are this gateway process's,
since it started.
"""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.appkeys import METRICS, NODE
from gateway.nodeapi import NodeUnavailable
from gateway.params import query

BATCH_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, node):
        self.registry = registry = CollectorRegistry(auto_describe=True)
        Gauge("stadsmunt_height", "Height of the last executed block",
              registry=registry).set_function(lambda: node.store.head()[0])
        self.view = Gauge("stadsmunt_view", "The PBFT view this validator is in",
                          registry=registry)
        self.view_changes = Gauge("stadsmunt_view_changes",
                                  "View changes seen since the validator process started",
                                  registry=registry)
        self.peers = Gauge("stadsmunt_peers_connected",
                           "Other validators linked to this one now", registry=registry)
        self.pending = Gauge("stadsmunt_pending_requests", "Requests waiting to be ordered",
                             registry=registry)
        self.refusals = Gauge(
            "stadsmunt_admission_refusals", "Envelopes refused before ordering since the "
            "validator process started, by code: the signer is not an active member "
            "(unknown_member, revoked, frozen) or over its share (over_share)", ["code"],
            registry=registry)
        self.faults = Gauge(
            "stadsmunt_peer_faults", "Messages of a partner validator that no correct "
            "validator sends (bad_signature, equivocation), seen since the validator "
            "process started", ["validator", "kind"], registry=registry)
        self.rules_version = Gauge("stadsmunt_rules_version",
                                   "The rules version in force at the head",
                                   registry=registry)
        self.rules_missing = Gauge(
            "stadsmunt_rules_pending_missing", "Height from which a rules version this "
            "validator's installation does not run is due (rules.activate); 0 when none",
            registry=registry)
        self.set_since = Gauge("stadsmunt_validator_set_since",
                               "First height of the validator set in force at the head",
                               registry=registry)
        self.set_pending = Gauge(
            "stadsmunt_validator_set_pending_from", "Height from which a pending validator "
            "set (validators.set) orders; 0 when none", registry=registry)
        self.member = Gauge("stadsmunt_validator_member",
                            "1 while this validator is in the set in force, else 0 (it "
                            "follows the chain without voting)", registry=registry)
        self.reachable = Gauge("stadsmunt_validator_reachable",
                               "1 while this gateway reaches its validator, else 0",
                               registry=registry)
        self.transactions = Counter(
            "stadsmunt_transactions", "Executed transactions since this process started, "
            "by result (ok, or rejected by the chaincode)", ["result"], registry=registry)
        self.transactions.labels("ok")
        self.transactions.labels("rejected")
        self.batch_size = Histogram("stadsmunt_batch_size", "Transactions per executed block",
                                    buckets=BATCH_BUCKETS, registry=registry)
        self.commit_latency = Histogram(
            "stadsmunt_commit_latency_seconds",
            "From submission through this gateway to execution", buckets=LATENCY_BUCKETS,
            registry=registry)

    async def refresh(self, node) -> None:
        try:
            status = await node.status()
        except NodeUnavailable:
            self.reachable.set(0)
            return
        self.reachable.set(1)
        self.view.set(status["view"])
        self.view_changes.set(status["view_changes"])
        self.peers.set(sum(1 for v in status["validators"] if v["connected"]) - 1)
        self.pending.set(status["pending"])
        rules = status.get("rules")
        if rules is not None:
            self.rules_version.set(rules["version"])
            pending = rules["pending"]
            missing = pending is not None and pending["version"] not in rules["runs"]
            self.rules_missing.set(pending["height"] if missing else 0)
        validator_set = status.get("validator_set")
        if validator_set is not None:
            self.set_since.set(validator_set["since"])
            pending = validator_set["pending"]
            self.set_pending.set(0 if pending is None else pending["from"])
            self.member.set(1 if validator_set["member"] else 0)
        for code, count in status.get("refusals", {}).items():
            self.refusals.labels(code).set(count)
        for name, kinds in status.get("faults", {}).items():
            for kind, count in kinds.items():
                self.faults.labels(name, kind).set(count)


async def get_metrics(request: web.Request) -> web.Response:
    query(request)
    metrics = request.app[METRICS]
    await metrics.refresh(request.app[NODE])
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
