"""Push the datasource, folder, boards and alerting to a running Grafana with grafana-client.

Idempotent: every object is read first and written only when it is missing or differs from
what the builders produce, so a second push changes nothing. Provisioning files (docker-compose)
and this push produce the same uids, so either route leads to the same Grafana.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from streams.boards import alerting, provisioning
from streams.boards.alerting import RULE_GROUP
from streams.boards.dashboards import FOLDER_TITLE, FOLDER_UID
from streams.boards.files import dashboard_json

# Fields of an alert rule that the builders decide (Grafana adds id, updated, provenance …).
RULE_FIELDS = (
    "title",
    "condition",
    "data",
    "for",
    "labels",
    "annotations",
    "noDataState",
    "execErrState",
    "folderUID",
    "ruleGroup",
)
POLICY_FIELDS = ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval")


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message says which object and why."""


@dataclass
class PushReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def record(self, kind: str, name: str) -> None:
        getattr(self, kind).append(name)


def _missing(read: Callable[[], Any]) -> Any | None:
    """What ``read`` returns, or None when Grafana answers 404."""
    try:
        return read()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _subset(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: data.get(k) for k in keys}


def _holds(found: Any, wanted: Any) -> bool:
    """Whether Grafana's copy has every value we set; keys Grafana adds itself (ids,
    ``intervalMs`` in query models, …) do not count as a difference."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(_holds(found.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(found, list)
            and len(found) == len(wanted)
            and all(_holds(f, w) for f, w in zip(found, wanted, strict=True))
        )
    return bool(found == wanted)


class Pusher:
    """One push to one Grafana."""

    def __init__(self, api: GrafanaApi, env: Mapping[str, str] | None = None) -> None:
        self.api = api
        self.env = os.environ if env is None else env
        self.report = PushReport()

    def datasource(self, clickhouse_host: str) -> None:
        wanted = provisioning.datasource(clickhouse_host)
        password = self.env.get(provisioning.READER_PASSWORD_ENV)
        secure = wanted.pop("secureJsonData")
        found = _missing(lambda: self.api.datasource.get_datasource_by_uid(wanted["uid"]))
        compared = ("name", "type", "access", "isDefault", "jsonData")
        if password:
            wanted["secureJsonData"] = {**secure, "password": password}
        if found is None:
            self.api.datasource.create_datasource(wanted)
            self.report.record("created", f"datasource {wanted['uid']}")
        elif not _holds(found, _subset(wanted, compared)):
            self.api.datasource.update_datasource_by_uid(wanted["uid"], wanted)
            self.report.record("updated", f"datasource {wanted['uid']}")
        else:
            self.report.record("unchanged", f"datasource {wanted['uid']}")

    def folder(self) -> None:
        found = _missing(lambda: self.api.folder.get_folder(FOLDER_UID))
        if found is None:
            self.api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
            self.report.record("created", f"folder {FOLDER_UID}")
        elif found.get("title") != FOLDER_TITLE:
            self.api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
            self.report.record("updated", f"folder {FOLDER_UID}")
        else:
            self.report.record("unchanged", f"folder {FOLDER_UID}")

    def dashboards(self) -> None:
        for model in dashboard_json().values():
            uid = model["uid"]
            found = _missing(partial(self.api.dashboard.get_dashboard, uid))
            if found is not None:
                stored = {k: v for k, v in found.get("dashboard", {}).items() if k not in ("id", "version")}
                same_folder = found.get("meta", {}).get("folderUid") == FOLDER_UID
                if stored == model and same_folder:
                    self.report.record("unchanged", f"dashboard {uid}")
                    continue
            self.api.dashboard.update_dashboard(
                {
                    "dashboard": {**model, "id": None},
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "rapport boards push",
                }
            )
            self.report.record("created" if found is None else "updated", f"dashboard {uid}")

    def alert_rules(self) -> None:
        provisioning_api = self.api.alertingprovisioning
        for rule in alerting.rules_api():
            uid = rule["uid"]
            found = _missing(partial(provisioning_api.get_alertrule, uid))
            if found is None:
                provisioning_api.create_alertrule(rule)
                self.report.record("created", f"alert rule {uid}")
            elif not _holds(found, _subset(rule, RULE_FIELDS)):
                provisioning_api.update_alertrule(uid, rule)
                self.report.record("updated", f"alert rule {uid}")
            else:
                self.report.record("unchanged", f"alert rule {uid}")
        group = provisioning_api.get_rule_group(FOLDER_UID, RULE_GROUP)
        if group.get("interval") != alerting.EVALUATION_INTERVAL_S:
            provisioning_api.update_rule_group(
                FOLDER_UID, RULE_GROUP, {**group, "interval": alerting.EVALUATION_INTERVAL_S}
            )
            self.report.record("updated", f"rule group {RULE_GROUP}")
        else:
            self.report.record("unchanged", f"rule group {RULE_GROUP}")

    def contact_point_and_policy(self, webhook_url: str | None) -> None:
        provisioning_api = self.api.alertingprovisioning
        if not webhook_url:
            self.report.record("skipped", f"contact point and policy (no {alerting.WEBHOOK_URL_ENV})")
            return
        wanted = alerting.contact_point_api()
        wanted["settings"] = {**wanted["settings"], "url": webhook_url}
        found = [
            p
            for p in provisioning_api.get_contactpoints(name=wanted["name"])
            if p.get("uid") == wanted["uid"]
        ]
        compared = ("name", "type", "settings", "disableResolveMessage")
        if not found:
            provisioning_api.create_contactpoint(wanted)
            self.report.record("created", f"contact point {wanted['uid']}")
        elif not _holds(found[0], _subset(wanted, compared)):
            provisioning_api.update_contactpoint(wanted["uid"], wanted)
            self.report.record("updated", f"contact point {wanted['uid']}")
        else:
            self.report.record("unchanged", f"contact point {wanted['uid']}")
        policy = alerting.policy_api()
        if _subset(provisioning_api.get_notification_policy_tree(), POLICY_FIELDS) != _subset(
            policy, POLICY_FIELDS
        ):
            provisioning_api.set_notification_policy_tree(policy)
            self.report.record("updated", "notification policy")
        else:
            self.report.record("unchanged", "notification policy")


def push(
    grafana_url: str,
    token: str | None = None,
    clickhouse_host: str = "clickhouse",
    webhook_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> PushReport:
    """Create or update everything; returns what was created, updated and left alone."""
    api = GrafanaApi.from_url(grafana_url, credential=token)
    pusher = Pusher(api, env)
    try:
        pusher.datasource(clickhouse_host)
        pusher.folder()
        pusher.dashboards()
        pusher.alert_rules()
        pusher.contact_point_and_policy(webhook_url)
    except GrafanaException as exc:
        done = ", ".join(pusher.report.created + pusher.report.updated) or "nothing"
        raise PushError(
            f"Grafana at {grafana_url} answered {exc.status_code or 'nothing'}: {exc}; "
            f"pushed so far: {done}. Check the URL and that the token is an admin service-account token."
        ) from exc
    return pusher.report
