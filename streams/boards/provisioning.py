"""Grafana file provisioning for docker-compose: the ClickHouse datasource and the dashboards
provider (alerting is in :mod:`streams.boards.alerting`).

Grafana substitutes ``$VARIABLE`` from its environment when it reads these files, so no
credential is written here: docker-compose passes them from ``.env``.
"""

from __future__ import annotations

from typing import Any

from streams.boards.dashboards import FOLDER_TITLE, FOLDER_UID
from streams.boards.queries import DATASOURCE_TYPE, DATASOURCE_UID

DATASOURCE_NAME = "ClickHouse (Rapport)"
GRAFANA_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/rapport"
READER_USER = "grafana"  # defined in dashboards/clickhouse/users.d/grafana_reader.xml
READER_PASSWORD_ENV = "GRAFANA_CLICKHOUSE_PASSWORD"
# The plugin gives every query a deadline of its queryTimeout (default "60", pkg/plugin/settings.go
# of grafana/clickhouse-datasource), and its clickhouse-go v2 client then sends
# max_execution_time = the time to that deadline + 5 s (context.go ``queryOptions``; described in
# ClickHouse/clickhouse-go#1107 and #1748). The reader's profile allows at most 60 s
# (grafana_reader.xml), so the default's 65 s would refuse every panel and alert query.
QUERY_TIMEOUT_S = 50
DRIVER_DEADLINE_MARGIN_S = 5


def datasource(host: str = "clickhouse") -> dict[str, Any]:
    """The datasource as the HTTP API (POST /api/datasources) and the provisioning file take it.

    It logs in as the read-only ClickHouse user (dashboards/clickhouse/users.d): Grafana does not
    check that panel SQL only reads.
    """
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {
            "host": host,
            "port": 9000,
            "protocol": "native",
            "secure": False,
            "username": READER_USER,
            "defaultDatabase": "rapport",
            "queryTimeout": str(QUERY_TIMEOUT_S),
        },
        "secureJsonData": {"password": f"${READER_PASSWORD_ENV}"},
    }


def datasources_file() -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{**datasource(), "orgId": 1, "editable": False}]}


def dashboards_file() -> dict[str, Any]:
    """The provider that loads the generated JSON into the Rapport folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "rapport",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": GRAFANA_DASHBOARDS_PATH},
            }
        ],
    }
