"""Every query the boards and alert rules run, with the result shape Grafana needs of it.

Tests run each one on a warehouse filled by the pipeline, and ``bench/queries.py`` times them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streams.boards.alerting import ALERT_QUERIES
from streams.boards.files import dashboard_json
from streams.boards.queries import DATASOURCE_UID, Format


@dataclass(frozen=True)
class BoardQuery:
    """One query: where it is, its SQL, and what its result must look like."""

    where: str  # "board uid / panel title", "board uid / $variable" or "alert uid"
    sql: str
    kind: str  # "time_series", "table", "variable" or "alert"
    board: str = ""  # the uid of the board whose variables it uses

    @property
    def server_only(self) -> bool:
        return self.kind == "alert"


def _panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def board_queries() -> list[BoardQuery]:
    found = []
    for model in dashboard_json().values():
        uid = model["uid"]
        for variable in model.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                found.append(BoardQuery(f"{uid} / ${variable['name']}", variable["query"], "variable", uid))
        for panel in _panels(model):
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("uid") != DATASOURCE_UID:
                    raise ValueError(
                        f"{uid} / {panel.get('title')}: target not on datasource {DATASOURCE_UID}"
                    )
                kind = "time_series" if target["format"] == Format.TIME_SERIES else "table"
                found.append(BoardQuery(f"{uid} / {panel['title']}", target["rawSql"], kind, uid))
    return found


def alert_queries() -> list[BoardQuery]:
    return [BoardQuery(q.uid, q.sql.strip(), "alert") for q in ALERT_QUERIES]


def all_queries() -> list[BoardQuery]:
    return board_queries() + alert_queries()
