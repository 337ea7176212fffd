"""k8s/monitoring: the alert rules pass `promtool check rules` and fire when (and only when) they
should (`promtool test rules`); the ServiceMonitor scrapes the API with the metrics token; the
dashboard is well formed; every metric a rule or panel names is served by the running app; and
docs/operations.md describes every panel and alert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .commands import asgi_serves
from .manifests import K8S_BASE, K8S_MONITORING, ROOT, by_kind, rendered, selector_matches
from .monitoring import (
    alert_rules,
    dashboard,
    dashboard_panels,
    names_in_rules_and_panels,
    prometheus_rule,
    run_promtool,
)

OPERATIONS = ROOT / "docs" / "operations.md"
ALERT_CASES = Path(__file__).parent / "alert_cases.yaml"
SEVERITIES = {"warning", "critical"}


def _write_rules(tmp_path: Path, *, annotations: bool) -> Path:
    groups = prometheus_rule()["spec"]["groups"]
    if not annotations:
        groups = [
            {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
            for g in groups
        ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    return path


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    rules = _write_rules(tmp_path, annotations=True)
    checked = run_promtool("check", "rules", str(rules), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_every_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    rules = _write_rules(tmp_path, annotations=False)
    cases = yaml.safe_load(ALERT_CASES.read_text())
    tested = {t["alertname"] for case in cases["tests"] for t in case["alert_rule_test"]}
    assert tested == {r["alert"] for r in alert_rules()}, "a promtool case for every alert"
    cases["rule_files"] = [rules.name]
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    ran = run_promtool("test", "rules", "cases.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_promtool_would_catch_a_broken_expectation(tmp_path: Path) -> None:
    """The harness above can fail: the same rules against a case that expects no alert."""
    rules = _write_rules(tmp_path, annotations=False)
    case = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'taskpipe_queue_depth{queue="email"}', "values": "500x30"}
                ],
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": "TaskpipeQueueBacklog", "exp_alerts": []}
                ],
            }
        ],
    }
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(case))
    assert run_promtool("test", "rules", "wrong.yaml", cwd=tmp_path).returncode != 0


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower-cased, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_says_how_bad_and_where_its_runbook_is(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    notes = rule["annotations"]
    assert notes["summary"]
    assert notes["description"]
    path, _, anchor = notes["runbook"].partition("#")
    assert (ROOT / path).is_file(), notes["runbook"]
    assert anchor in _anchors((ROOT / path).read_text()), f"no section #{anchor} in {path}"


def test_the_service_monitor_scrapes_the_api_with_the_metrics_token() -> None:
    (monitor,) = by_kind(rendered(K8S_MONITORING), "ServiceMonitor")
    base = rendered(K8S_BASE)
    services = [
        s
        for s in by_kind(base, "Service")
        if selector_matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert [s["metadata"]["name"] for s in services] == ["taskpipe-api"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in services[0]["spec"]["ports"]}
    assert asgi_serves("api.main:app", endpoint["path"])
    credentials = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    (secret,) = by_kind(base, "Secret")
    assert credentials["name"] == secret["metadata"]["name"]
    assert credentials["key"] == "TASKPIPE_METRICS_TOKEN"
    assert credentials["key"] in secret["stringData"]
    assert monitor["metadata"]["namespace"] == secret["metadata"]["namespace"]


def test_the_dashboard_ships_as_a_configmap_grafana_picks_up() -> None:
    (config_map,) = by_kind(rendered(K8S_MONITORING), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"]["taskpipe-dashboard.json"].strip() == (
        (K8S_MONITORING / "taskpipe-dashboard.json").read_text().strip()
    )


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels():
        assert panel["description"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert "taskpipe_" in target["expr"], panel["title"]


def test_docs_describe_every_panel_and_alert() -> None:
    text = OPERATIONS.read_text()
    for panel in dashboard_panels():
        assert f"**{panel['title']}**" in text, f"panel {panel['title']!r} undescribed"
    for rule in alert_rules():
        assert f"### {rule['alert']}" in text, f"alert {rule['alert']} has no runbook section"


async def test_every_metric_in_rules_and_panels_is_served_by_the_app(
    client: httpx.AsyncClient,
) -> None:
    """Scrape the running app (with a request, a cache lookup, a job stat and a heartbeat
    behind it) and compare: a renamed metric would leave a panel blank or an alert silent."""
    await client.get("/health")
    served: set[str] = set()
    for family in text_string_to_metric_families((await client.get("/metrics")).text):
        served.add(family.name)
        served |= {sample.name for sample in family.samples}
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        served |= {family.name + s for s in suffixes.get(family.type, ())}
    missing = {
        name: where for name, where in names_in_rules_and_panels().items() if name not in served
    }
    assert missing == {}
