"""GET /metrics in the Prometheus text format, through prometheus-client, with one
registry per application (two validators in one test process do not share figures).

Gauges that the node already knows (height, view, view changes, peers) are read when
scraped; counts and histograms are fed by gateway/feed.py as batches execute.
"""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.appkeys import METRICS
from gateway.params import query

BATCH_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, node):
        self.registry = registry = CollectorRegistry(auto_describe=True)
        status = node.status
        Gauge("stadsmunt_height", "Height of the last executed block",
              registry=registry).set_function(lambda: node.store.head()[0])
        Gauge("stadsmunt_view", "The PBFT view this validator is in",
              registry=registry).set_function(lambda: node.replica.view)
        Gauge("stadsmunt_view_changes", "View changes seen since this process started",
              registry=registry).set_function(lambda: node.view_changes)
        Gauge("stadsmunt_peers_connected", "Other validators linked to this one now",
              registry=registry).set_function(
            lambda: sum(1 for v in status()["validators"] if v["connected"]) - 1)
        Gauge("stadsmunt_pending_requests", "Requests waiting to be ordered",
              registry=registry).set_function(lambda: node.replica.pending_count)
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


async def get_metrics(request: web.Request) -> web.Response:
    query(request)
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
