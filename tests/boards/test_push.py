"""`rapport boards push` against a stand-in Grafana.

No Grafana server can run on this machine (no package carries it, no Docker), so a small local
HTTP server started here stands in for it: it keeps what it is sent in memory, answers like
Grafana's HTTP API (404 for unknown uids, the documented response bodies), and rejects request
bodies that miss the fields Grafana's API documentation requires. grafana-client, the push
logic and the payloads are real; only Grafana is a stub.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from streams.boards import alerting
from streams.boards.dashboards import BOARDS, FOLDER_UID
from streams.boards.push import PushError, push
from streams.cli import main

TOKEN = "test-token"
# Required body fields per documented endpoint (Grafana HTTP API reference).
REQUIRED = {
    ("POST", "/api/datasources"): {"name", "type", "access"},
    ("PUT", "/api/datasources/uid/"): {"name", "type", "access"},
    ("POST", "/api/folders"): {"title"},
    ("PUT", "/api/folders/"): {"title"},
    ("POST", "/api/dashboards/db"): {"dashboard", "overwrite"},
    ("POST", "/api/v1/provisioning/alert-rules"): {
        "title",
        "condition",
        "data",
        "folderUID",
        "ruleGroup",
        "for",
        "noDataState",
        "execErrState",
        "orgID",
    },
    ("PUT", "/api/v1/provisioning/alert-rules/"): {"title", "condition", "data", "folderUID", "ruleGroup"},
    ("PUT", "/api/v1/provisioning/folder/"): {"title", "interval", "rules"},
    ("POST", "/api/v1/provisioning/contact-points"): {"name", "type", "settings"},
    ("PUT", "/api/v1/provisioning/contact-points/"): {"name", "type", "settings"},
    ("PUT", "/api/v1/provisioning/policies"): {"receiver"},
}


def stored_rule(body: dict[str, Any]) -> dict[str, Any]:
    """A rule as Grafana stores it: it adds defaults to each query model and bookkeeping fields."""
    data = [{**q, "model": {"intervalMs": 1000, "maxDataPoints": 43200, **q["model"]}} for q in body["data"]]
    return {**body, "data": data, "provenance": "api", "updated": "2026-11-27T21:00:00Z"}


class FakeGrafana:
    def __init__(self) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.group_intervals: dict[tuple[str, str], int] = {}
        self.contact_points: dict[str, dict[str, Any]] = {}
        self.policy: dict[str, Any] = {
            "receiver": "grafana-default-email",
            "group_by": ["grafana_folder", "alertname"],
        }
        self.requests: list[tuple[str, str, Any]] = []
        self.problems: list[str] = []

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]

    def check(self, method: str, path: str, body: Any) -> None:
        for (m, prefix), fields in REQUIRED.items():
            exact = not prefix.endswith("/")
            if m == method and (path == prefix if exact else path.startswith(prefix)):
                missing = fields - set(body)
                if missing:
                    self.problems.append(f"{method} {path} misses {sorted(missing)}")
        if path.startswith("/api/v1/provisioning/alert-rules") and method != "GET":
            for query in body["data"]:
                if not {"refId", "datasourceUid", "model"} <= set(query):
                    self.problems.append(f"{method} {path}: query {query.get('refId')} incomplete")
                if query["datasourceUid"] != "__expr__" and "relativeTimeRange" not in query:
                    self.problems.append(f"{method} {path}: {query['refId']} has no relativeTimeRange")

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/api/datasources" and method == "POST":
            self.datasources[body["uid"]] = body
            return 200, {"id": 1, "message": "Datasource added", "name": body["name"], "datasource": body}
        if path.startswith("/api/datasources/uid/"):
            uid = parts[-1]
            if method == "GET":
                found = self.datasources.get(uid)
                return (
                    (200, {k: v for k, v in found.items() if k != "secureJsonData"}) if found else (404, {})
                )
            self.datasources[uid] = body
            return 200, {"message": "Datasource updated", "datasource": body}
        if path == "/api/folders" and method == "POST":
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
            return 200, self.folders[body["uid"]]
        if path.startswith("/api/folders/"):
            uid = parts[-1]
            if method == "GET":
                return (
                    (200, self.folders[uid])
                    if uid in self.folders
                    else (404, {"message": "folder not found"})
                )
            self.folders[uid].update(title=body["title"])
            return 200, self.folders[uid]
        if path == "/api/dashboards/db":
            model = body["dashboard"]
            if model.get("uid") is None or body.get("folderUid") not in self.folders:
                return 400, {"message": "dashboard uid and an existing folderUid are required"}
            version = self.dashboards.get(model["uid"], {}).get("dashboard", {}).get("version", 0) + 1
            stored = {**model, "id": 7, "version": version}
            self.dashboards[model["uid"]] = {"dashboard": stored, "meta": {"folderUid": body["folderUid"]}}
            return 200, {"id": 7, "uid": model["uid"], "status": "success", "version": version}
        if path.startswith("/api/dashboards/uid/"):
            found = self.dashboards.get(parts[-1])
            return (200, found) if found else (404, {"message": "Dashboard not found"})
        if path == "/api/v1/provisioning/alert-rules" and method == "POST":
            self.rules[body["uid"]] = {**stored_rule(body), "id": len(self.rules) + 1}
            self.group_intervals.setdefault((body["folderUID"], body["ruleGroup"]), 60)
            return 201, self.rules[body["uid"]]
        if path.startswith("/api/v1/provisioning/alert-rules/"):
            uid = parts[-1]
            if method == "GET":
                return (200, self.rules[uid]) if uid in self.rules else (404, {})
            self.rules[uid] = {**stored_rule(body), "id": self.rules[uid]["id"]}
            return 200, self.rules[uid]
        if path.startswith("/api/v1/provisioning/folder/"):
            folder, group = parts[4], parts[6]
            if (folder, group) not in self.group_intervals:
                return 404, {}
            if method == "PUT":
                self.group_intervals[(folder, group)] = body["interval"]
            rules = [r for r in self.rules.values() if (r["folderUID"], r["ruleGroup"]) == (folder, group)]
            return 200, {
                "title": group,
                "folderUid": folder,
                "interval": self.group_intervals[(folder, group)],
                "rules": rules,
            }
        if path == "/api/v1/provisioning/contact-points":
            if method == "GET":
                name = query.get("name", [None])[0]
                return 200, [c for c in self.contact_points.values() if name in (None, c["name"])]
            self.contact_points[body["uid"]] = body
            return 202, body
        if path.startswith("/api/v1/provisioning/contact-points/"):
            self.contact_points[parts[-1]] = body
            return 202, {}
        if path == "/api/v1/provisioning/policies":
            if method == "GET":
                return 200, self.policy
            self.policy = body
            return 202, {"message": "policies updated"}
        return 404, {"message": f"no such endpoint {method} {path}"}


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests.append((self.command, url.path, body))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, answer = 401, {"message": "Unauthorized"}
            else:
                if body is not None:
                    fake.check(self.command, url.path, body)
                status, answer = fake.handle(self.command, url.path, parse_qs(url.query), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", fake
    server.shutdown()
    server.server_close()


def test_push_creates_everything_then_a_second_push_changes_nothing(grafana):
    url, fake = grafana
    env = {"GRAFANA_CLICKHOUSE_PASSWORD": "secret"}
    first = push(url, TOKEN, webhook_url="http://hooks.example/rapport", env=env)
    assert fake.problems == []
    assert set(fake.dashboards) == {build().build().uid for build in BOARDS.values()}
    assert set(fake.rules) == {q.uid for q in alerting.ALERT_QUERIES}
    assert fake.group_intervals[(FOLDER_UID, alerting.RULE_GROUP)] == alerting.EVALUATION_INTERVAL_S
    assert fake.datasources["clickhouse"]["secureJsonData"] == {"password": "secret"}
    assert fake.contact_points[alerting.CONTACT_POINT]["settings"]["url"] == "http://hooks.example/rapport"
    assert fake.policy["receiver"] == alerting.CONTACT_POINT
    assert len(first.created) == 1 + 1 + len(BOARDS) + len(alerting.ALERT_QUERIES) + 1
    writes = fake.writes()
    assert ("POST", "/api/datasources") in writes and ("POST", "/api/folders") in writes
    assert writes.count(("POST", "/api/dashboards/db")) == len(BOARDS)
    assert writes.count(("POST", "/api/v1/provisioning/alert-rules")) == len(alerting.ALERT_QUERIES)

    fake.requests.clear()
    second = push(url, TOKEN, webhook_url="http://hooks.example/rapport", env=env)
    assert fake.writes() == [], "a second push must only read"
    assert second.created == second.updated == []
    assert len(second.unchanged) == len(first.created) + len(first.updated)


def test_push_updates_only_what_changed(grafana):
    url, fake = grafana
    push(url, TOKEN, env={})
    fake.dashboards["rapport-account-health"]["dashboard"]["title"] = "edited in the UI"
    fake.rules["rapport-account-disengaged"]["for"] = "1h"
    fake.requests.clear()
    report = push(url, TOKEN, env={})
    assert sorted(fake.writes()) == [
        ("POST", "/api/dashboards/db"),
        ("PUT", "/api/v1/provisioning/alert-rules/rapport-account-disengaged"),
    ]
    assert report.updated == ["dashboard rapport-account-health", "alert rule rapport-account-disengaged"]
    assert report.skipped, "no webhook URL: contact point and policy are skipped, and the report says so"


def test_push_with_a_wrong_token_names_grafana_and_the_fix(grafana):
    url, _fake = grafana
    with pytest.raises(PushError, match=r"answered 401.*token"):
        push(url, "wrong", env={})


def test_cli_push_and_build_check(grafana, tmp_path, monkeypatch):
    url, fake = grafana
    monkeypatch.setenv("GRAFANA_CLICKHOUSE_PASSWORD", "secret")
    monkeypatch.delenv("RAPPORT_ALERT_WEBHOOK_URL", raising=False)
    result = CliRunner().invoke(main, ["boards", "push", "--grafana-url", url, "--token", TOKEN])
    assert result.exit_code == 0, result.output
    assert "created" in result.output and len(fake.dashboards) == len(BOARDS)

    assert CliRunner().invoke(main, ["boards", "build", "--out", str(tmp_path)]).exit_code == 0
    assert CliRunner().invoke(main, ["boards", "build", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "provisioning" / "alerting" / "rapport.yaml").write_text("edited")
    checked = CliRunner().invoke(main, ["boards", "build", "--out", str(tmp_path), "--check"])
    assert checked.exit_code == 1 and "provisioning/alerting/rapport.yaml" in checked.output
