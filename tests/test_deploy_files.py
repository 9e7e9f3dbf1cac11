"""The deployment files of ops/deploy/ agree with the code and with docs/operators.md
(sections "7. Install" to "13. Disk growth"):

- every metric that alerts.yml and dashboard.json query is one the gateway serves
  (gateway/metrics.py, with the suffixes its type adds), Prometheus's own `up`, or one of
  the node_exporter metrics listed here;
- alerts.yml is a well-formed Prometheus rules file; dashboard.json is valid JSON with a
  query in every panel;
- the systemd unit has what the docs promise (ExecStart, Restart, User, hardening);
- docs/operators.md names each file of ops/deploy/.
"""
from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import yaml   # PyPI's PyYAML, installed with the test extra (schemathesis needs it)

from gateway.metrics import Metrics
from gateway.transactions import MAX_BATCH_BODY

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "ops" / "deploy"
DOCS = REPO / "docs" / "operators.md"

PROMETHEUS_OWN = {"up"}
NODE_EXPORTER = {              # node_exporter's filesystem collector, documented there
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
}
SUFFIXES = {"counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",)}

FUNCTIONS = {"abs", "absent", "avg", "avg_over_time", "ceil", "changes", "clamp_min",
             "count", "delta", "deriv", "floor", "histogram_quantile", "increase",
             "irate", "label_values", "max", "max_over_time", "min", "min_over_time",
             "predict_linear", "rate", "resets", "round", "scalar", "sum", "sum_over_time",
             "time", "topk", "vector"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")


class _Store:
    def head(self):
        return 0, b""


class _Node:
    store = _Store()


def served_metrics() -> set[str]:
    """Every sample name gateway/metrics.py can expose, by each metric's type."""
    names = set()
    for family in Metrics(_Node()).registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    assert names, "no metric found in gateway/metrics.py"
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)        # strings
    text = re.sub(r"\{[^{}]*\}", " ", text)                 # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)               # ranges
    text = GROUPING.sub(" ", text)                          # by (...), on (...)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\s*(\()?", text):
        word, call = match.groups()
        if call:
            assert word in FUNCTIONS, f"unknown function {word!r} in {expr!r}"
        elif word not in KEYWORDS:
            names.add(word)
    return names


def alert_rules() -> list[dict]:
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "dashboard.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_metric_parser_finds_names_and_skips_the_rest():
    assert metric_names('histogram_quantile(0.99, sum by (instance, le) '
                        '(rate(stadsmunt_commit_latency_seconds_bucket{job="x"}[5m]))) > 2') \
        == {"stadsmunt_commit_latency_seconds_bucket"}
    assert metric_names('delta(stadsmunt_height[2m]) <= 0 and stadsmunt_pending_requests > 0') \
        == {"stadsmunt_height", "stadsmunt_pending_requests"}
    assert metric_names('predict_linear(node_filesystem_avail_bytes{mountpoint="/srv"}[6h], '
                        '14 * 24 * 3600) < 0') == {"node_filesystem_avail_bytes"}


def test_served_metrics_include_the_suffixed_names():
    served = served_metrics()
    assert {"stadsmunt_height", "stadsmunt_transactions_total", "stadsmunt_peer_faults",
            "stadsmunt_commit_latency_seconds_bucket", "stadsmunt_batch_size_count"} <= served
    assert "stadsmunt_transactions" not in served and "stadsmunt_height_total" not in served


def test_every_metric_queried_exists():
    allowed = served_metrics() | PROMETHEUS_OWN | NODE_EXPORTER
    used = {}
    for where, exprs in (("alerts.yml", [r["expr"] for r in alert_rules()]),
                         ("dashboard.json", dashboard_exprs())):
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, where)
    unknown = sorted(f"{where}: {name}" for name, where in used.items() if name not in allowed)
    assert not unknown, "\n".join(unknown)
    assert any(name.startswith("stadsmunt_") for name in used)


def test_node_exporter_metrics_are_marked_in_the_files():
    for name in ("alerts.yml", "dashboard.json"):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        if any(metric in text for metric in NODE_EXPORTER):
            assert "node_exporter" in text, f"{name} uses node_exporter metrics unmarked"


def test_alerts_are_a_prometheus_rules_file():
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    names = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["alert"], str) and re.fullmatch(r"[A-Za-z_]\w*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            assert re.fullmatch(r"(\d+[smhd])+", str(rule.get("for", "0s"))), rule["alert"]
            assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            names.append(rule["alert"])
    assert len(names) == len(set(names)), "two alerts of one name"
    exprs = " ".join(r["expr"] for r in alert_rules())
    for metric in ("up", "stadsmunt_height", "stadsmunt_view_changes", "stadsmunt_peer_faults",
                   "stadsmunt_admission_refusals", "node_filesystem_avail_bytes"):
        assert re.search(rf"\b{metric}\b", exprs), f"no alert on {metric}"


def test_dashboard_is_grafana_json():
    dashboard = json.loads((DEPLOY / "dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["uid"] and dashboard["panels"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel.get("title")
        assert panel["datasource"]["uid"] == "${datasource}"
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"].strip() for t in panel["targets"])


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"), delimiters=("=",))
    parser.optionxform = str
    parser.read_string((DEPLOY / "stadsmunt.service").read_text(encoding="utf-8"))
    return parser


def test_the_unit_has_what_the_docs_promise():
    service = unit()["Service"]
    assert service["ExecStart"].split()[:3] == ["/opt/stadsmunt/bin/stadsmunt", "node", "run"]
    assert service["ExecStart"].split()[3] == "/srv/stadsmunt/%i"
    assert service["Restart"] == "on-failure"
    assert service["User"] == "stadsmunt"
    assert service["KillMode"] == "mixed" and service["KillSignal"] == "SIGTERM"
    assert int(service["LimitNOFILE"]) >= 65536
    assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/srv/stadsmunt/%i"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit()["Unit"]["After"]


def test_the_docs_show_the_unit_as_it_is():
    docs = DOCS.read_text(encoding="utf-8")
    service = unit()["Service"]
    for key in ("ExecStart", "Restart", "User", "KillMode", "LimitNOFILE", "ProtectSystem",
                "ReadWritePaths"):
        assert f"{key}={service[key]}" in docs, key
    assert "/opt/stadsmunt/.venv" not in docs
    assert "stadsmunt@.service" in docs


def test_the_docs_name_every_deploy_file():
    docs = DOCS.read_text(encoding="utf-8")
    files = sorted(p.name for p in DEPLOY.iterdir() if p.is_file())
    assert {"stadsmunt.service", "alerts.yml", "dashboard.json", "nginx.conf"} <= set(files)
    missing = [name for name in files if f"ops/deploy/{name}" not in docs]
    assert not missing, missing


def test_every_alert_is_in_the_docs():
    docs = DOCS.read_text(encoding="utf-8")
    missing = [r["alert"] for r in alert_rules() if f"`{r['alert']}`" not in docs]
    assert not missing, missing


def test_the_proxy_streams_events_unbuffered():
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    stream = conf[conf.index("location = /v1/events/stream"):]
    stream = stream[:stream.index("}")]
    assert "proxy_buffering off;" in stream
    seconds = {"s": 1, "m": 60, "h": 3600}
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", stream)
    assert timeout and int(timeout[1]) * seconds[timeout[2]] > 300   # a token's life
    assert conf.count("{") == conf.count("}")
    assert "X-Forwarded-For" in conf
    assert f"client_max_body_size {MAX_BATCH_BODY >> 20}m;" in conf   # a whole batch
