"""The committed files under dashboards/ are what the builders produce, they validate against
Grafana's schemas, and every uid agrees across boards, provisioning and alert rules."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from streams.boards import alerting, files, provisioning
from streams.boards.dashboards import BOARDS, FOLDER_TITLE, FOLDER_UID
from streams.boards.inventory import board_queries
from streams.boards.queries import DATASOURCE_TYPE, DATASOURCE_UID

REPO = Path(__file__).parents[2]
DASHBOARDS = REPO / "dashboards"
SCHEMAS = REPO.parent / "shared" / "grafana-schemas"


def schema(name: str) -> dict:
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (Grafana's schemas sit beside the repository)")
    return json.loads(path.read_text())


def test_committed_files_are_what_the_builders_produce():
    expected = files.render()
    assert set(expected) >= {f"json/{name}.json" for name in BOARDS}
    for path, text in expected.items():
        assert (DASHBOARDS / path).read_text() == text, (
            f"dashboards/{path} is stale: run `rapport boards build`"
        )
    assert files.drift(DASHBOARDS) == []


def test_drift_names_a_changed_file(tmp_path):
    files.write(tmp_path)
    assert files.drift(tmp_path) == []
    board = tmp_path / "json" / "account-health.json"
    board.write_text(board.read_text().replace("Accounts by tier", "Accounts by colour"))
    (tmp_path / "json" / "old-board.json").write_text("{}")
    assert files.drift(tmp_path) == ["json/account-health.json", "json/old-board.json"]
    assert files.write(tmp_path) == ["json/account-health.json", "json/old-board.json"]
    assert files.drift(tmp_path) == [] and not (tmp_path / "json" / "old-board.json").exists()


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_validates_against_grafana_schema(name):
    model = json.loads((DASHBOARDS / "json" / f"{name}.json").read_text())
    jsonschema.validate(model, schema("dashboard.jsonschema.json"))
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique within a dashboard"


def test_alert_expressions_validate_against_grafana_schema():
    expr_schema = schema("expr.jsonschema.json")
    for rule in alerting.rules_api():
        expressions = [q for q in rule["data"] if q["datasourceUid"] == "__expr__"]
        assert [q["model"]["type"] for q in expressions] == ["reduce", "threshold"]
        for query in expressions:
            jsonschema.validate(query["model"], expr_schema)
        assert rule["condition"] == expressions[-1]["refId"]


def test_uids_agree_across_boards_provisioning_and_alerts():
    load = lambda path: yaml.safe_load((DASHBOARDS / path).read_text())  # noqa: E731
    datasources = load("provisioning/datasources/clickhouse.yaml")["datasources"]
    assert [(d["uid"], d["type"]) for d in datasources] == [(DATASOURCE_UID, DATASOURCE_TYPE)]

    board_uids = set()
    panel_ids: dict[str, set[str]] = {}
    for name in BOARDS:
        model = json.loads((DASHBOARDS / "json" / f"{name}.json").read_text())
        board_uids.add(model["uid"])
        panel_ids[model["uid"]] = {str(p["id"]) for p in model["panels"] if p["type"] != "row"}
        for panel in model["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
                assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])
        for variable in model["templating"].get("list", []):
            assert variable["datasource"]["uid"] == DATASOURCE_UID
    assert len(board_uids) == len(BOARDS)
    assert len(board_queries()) > len(BOARDS)

    provider = load("provisioning/dashboards/rapport.yaml")["providers"][0]
    assert (provider["folderUid"], provider["folder"]) == (FOLDER_UID, FOLDER_TITLE)
    assert provider["options"]["path"] == provisioning.GRAFANA_DASHBOARDS_PATH

    alerting_file = load("provisioning/alerting/rapport.yaml")
    group = alerting_file["groups"][0]
    assert group["folder"] == FOLDER_TITLE
    for rule in group["rules"]:
        sources = [q for q in rule["data"] if q["datasourceUid"] != "__expr__"]
        assert sources and all(q["datasourceUid"] == DATASOURCE_UID for q in sources)
        assert all(q["model"]["datasource"]["uid"] == DATASOURCE_UID for q in sources)
        linked = rule["annotations"]["__dashboardUid__"]
        assert linked in board_uids and rule["annotations"]["__panelId__"] in panel_ids[linked]
    receivers = {r["uid"] for cp in alerting_file["contactPoints"] for r in cp["receivers"]}
    names = {cp["name"] for cp in alerting_file["contactPoints"]}
    assert alerting_file["policies"][0]["receiver"] in names and alerting.CONTACT_POINT in receivers
    # credentials come from Grafana's environment, never from the file
    assert datasources[0]["secureJsonData"] == {"password": "$GRAFANA_CLICKHOUSE_PASSWORD"}
