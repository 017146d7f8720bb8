"""Alert rules on disengaged buyers, the webhook contact point and the notification policy.

Each rule is ClickHouse query → reduce → threshold, built with grafana-foundation-sdk. Alert
queries run in Grafana's backend without a dashboard, so their SQL uses only the datasource's
server-side macros (``$__fromTime``, ``$__toTime``, …), never dashboard variables or
``$__conditionalAll``. Windows are wider than the evaluation interval so rows that reach the
warehouse late (ingestion delay, the scorer's allowed lateness) are still seen, and a missing
latest day never resolves an alert by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange
from grafana_foundation_sdk.models.common import DataSourceRef

from streams.boards.dashboards import BOARDS, FOLDER_TITLE, FOLDER_UID, latest_health, panel_id
from streams.boards.queries import DATASOURCE_UID, ClickHouse

RULE_GROUP = "rapport-buyers"
EVALUATION_INTERVAL_S = 300
CONTACT_POINT = "rapport-webhook"
WEBHOOK_URL_ENV = "RAPPORT_ALERT_WEBHOOK_URL"
EXPRESSIONS = DataSourceRef(type_val="__expr__", uid="__expr__")
DAY = 86400


@dataclass(frozen=True)
class AlertQuery:
    """The SQL of one rule, its lookback window in seconds, and the threshold on its value."""

    uid: str
    title: str
    sql: str
    window_s: int
    above: float
    summary: str
    pending: str
    board: str  # the board (BOARDS key) and panel the alert links to
    panel: str


ALERT_QUERIES = (
    AlertQuery(
        uid="rapport-account-disengaged",
        title="Account disengaged",
        # The latest daily snapshot within three days: today's may not be written yet.
        sql=f"""
SELECT account_id AS account, toFloat64(h_tier = 'disengaged') AS disengaged
FROM ({latest_health(("tier",), h=("toDate($__fromTime)", "toDate($__toTime)", "<="))})""",
        window_s=3 * DAY,
        above=0,
        summary="Account {{ $labels.account }} is disengaged: see the account drilldown board.",
        pending="15m",
        board="account-drilldown",
        panel="Health and depth",
    ),
    AlertQuery(
        uid="rapport-buyer-alerts-open",
        title="Buyer alerts open",
        # The scorer's own alerts (tier drop, silent key contact, …), open and raised in a week.
        sql="""
SELECT account_id AS account, kind, severity, toFloat64(countIf(status = 'open')) AS open_alerts
FROM rapport.alerts FINAL
WHERE raised_at >= $__fromTime AND raised_at <= $__toTime
GROUP BY account_id, kind, severity""",
        window_s=7 * DAY,
        above=0,
        summary="{{ $labels.kind }} on account {{ $labels.account }}: see the alerts feed.",
        pending="0s",
        board="account-health",
        panel="Alerts feed",
    ),
)


def rule(query: AlertQuery) -> alerting.Rule:
    """A → the ClickHouse query, B → reduce to the last value, C → threshold (the condition)."""
    source = (
        alerting.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(RelativeTimeRange(from_val=query.window_s, to=0))
        .model(ClickHouse(query.sql).table().ref_id("A"))
    )
    reduce = (
        alerting.Query("B")
        .datasource_uid(EXPRESSIONS.uid or "__expr__")
        .model(expr.TypeReduce().ref_id("B").datasource(EXPRESSIONS).expression("A").reducer("last"))
    )
    threshold = (
        alerting.Query("C")
        .datasource_uid(EXPRESSIONS.uid or "__expr__")
        .model(
            expr.TypeThreshold()
            .ref_id("C")
            .datasource(EXPRESSIONS)
            .expression("B")
            .conditions(
                [
                    expr.ExprTypeThresholdConditions().evaluator(
                        expr.ExprTypeThresholdConditionsEvaluator().type("gt").params([query.above])
                    )
                ]
            )
        )
    )
    return (
        alerting.Rule(query.title)
        .uid(query.uid)
        .folder_uid(FOLDER_UID)
        .rule_group(RULE_GROUP)
        .org_id(1)
        .queries([source, reduce, threshold])
        .condition("C")
        .for_val(query.pending)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"team": "sales", "source": "rapport"})
        .annotations(
            {
                "summary": query.summary,
                "__dashboardUid__": BOARDS[query.board]().build().uid or "",
                "__panelId__": str(panel_id(query.board, query.panel)),
            }
        )
    )


def contact_point() -> alerting.ContactPoint:
    # Grafana substitutes the environment variable when it reads the provisioning file.
    return (
        alerting.ContactPoint()
        .uid(CONTACT_POINT)
        .name(CONTACT_POINT)
        .type("webhook")
        .settings({"url": f"${WEBHOOK_URL_ENV}", "httpMethod": "POST"})
        .disable_resolve_message(False)
    )


def notification_policy() -> alerting.NotificationPolicy:
    return (
        alerting.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .group_by(["grafana_folder", "alertname", "account"])
        .group_wait("30s")
        .group_interval("5m")
        .repeat_interval("12h")
    )


def to_json(built: Any) -> dict[str, Any]:
    """The API JSON of a built SDK object."""
    return json.loads(JSONEncoder(sort_keys=True).encode(built))  # type: ignore[no-any-return]


def rules_api() -> list[dict[str, Any]]:
    """Rules as the provisioning HTTP API takes them (POST /api/v1/provisioning/alert-rules)."""
    return [to_json(rule(q).build()) for q in ALERT_QUERIES]


def contact_point_api() -> dict[str, Any]:
    return to_json(contact_point().build())


def policy_api() -> dict[str, Any]:
    return to_json(notification_policy().build())


def provisioning_file() -> dict[str, Any]:
    """The same objects in Grafana's alerting file-provisioning format (apiVersion 1)."""
    file_rules = []
    for api_rule in rules_api():
        kept = {k: v for k, v in api_rule.items() if k not in ("folderUID", "ruleGroup", "orgID")}
        file_rules.append(kept)
    point = contact_point_api()
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": FOLDER_TITLE,
                "interval": f"{EVALUATION_INTERVAL_S}s",
                "rules": file_rules,
            }
        ],
        "contactPoints": [
            {
                "orgId": 1,
                "name": point["name"],
                "receivers": [
                    {
                        "uid": point["uid"],
                        "type": point["type"],
                        "settings": point["settings"],
                        "disableResolveMessage": point["disableResolveMessage"],
                    }
                ],
            }
        ],
        "policies": [{"orgId": 1, **policy_api()}],
    }
