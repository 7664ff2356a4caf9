"""deploy/monitoring: the Grafana dashboard and the Prometheus alert rules.
Every expression parses as PromQL (promql-parser, the parser of Prometheus'
grammar kept by the GreptimeDB project), and names only metrics that a
live node's /metrics exports: a node with a ready session (fake session
processes, no browser) that has sent a message, read through METRICS_ADDR
as Prometheus reads it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from support import create_ready, heartbeat_field, new_phone, wait_for

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
DASHBOARD = MONITORING / "wwnode-dashboard.json"
ALERTS = MONITORING / "wwnode-alerts.yaml"

# What Grafana puts in place of its variables before a query is sent.
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "30s", "$instance": ".*"}


def dashboard_expressions() -> dict[str, str]:
    """Every query of the dashboard, by where it is, variables replaced."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            found[f"panel {panel['title']!r} {target['refId']}"] = expr
    return found


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return {f"alert {rule['alert']}": rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def test_the_dashboard_and_alerts_cover_what_operators_watch():
    names = set().union(*(metric_names(e) for e in {**dashboard_expressions(), **alert_expressions()}.values()))
    for watched in ("wwnode_sessions", "wwnode_session_failures_total", "wwnode_admission_accepting",
                    "wwnode_leases_lost_total", "wwnode_send_seconds_bucket", "wwnode_commands_total",
                    "wwnode_spool_events", "wwnode_session_memory_bytes"):
        assert watched in names
    dashboard = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "instance"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("where, expr", sorted({**dashboard_expressions(), **alert_expressions()}.items()))
def test_every_expression_parses(where, expr):
    assert metric_names(expr), f"{where} names no metric"


def test_the_parser_refuses_what_prometheus_refuses():
    for bad in ("sum(rate(wwnode_sessions[5m])", "wwnode_sessions{state=ready}", "rate(wwnode_sessions[5x])"):
        with pytest.raises(ValueError):
            promql_parser.parse(bad)


def exported_names(text: str) -> set[str]:
    """Every series name the text format can carry for these families,
    samples or not yet (a counter no one has raised still has its name)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",), "summary": ("", "_count", "_sum", "_created")}
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.services
def test_every_metric_named_is_one_a_live_node_exports(fake_nodes, fake, rabbit, redis_client):
    fake_nodes("node-mon", metrics_addr="127.0.0.1:0")
    addr = wait_for(lambda: heartbeat_field(redis_client, "node-mon", "metrics_addr"), timeout=60,
                    what="the node's heartbeat naming its metrics address")
    create_ready(rabbit, fake, "mon-1", new_phone())
    rabbit.publish("send_message", {"key": "mon-1", "chat_id": "5511999999999@c.us", "message": "hi", "id": "m1"})
    rabbit.expect("message_sent_instance", key="mon-1", command_id="m1")

    def scrape_with_session_memory():
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return text if 'wwnode_session_memory_bytes{key="mon-1"}' in text else None

    exported = exported_names(wait_for(scrape_with_session_memory, timeout=60, interval=0.5,
                                       what="/metrics to carry the session's memory"))
    for where, expr in {**dashboard_expressions(), **alert_expressions()}.items():
        unknown = metric_names(expr) - exported
        assert not unknown, f"{where} names {sorted(unknown)}, which the node does not export"
    variable = json.loads(DASHBOARD.read_text())["templating"]["list"][1]["query"]["query"]
    assert variable.startswith("label_values(") and variable[len("label_values("):].split(",")[0] in exported
