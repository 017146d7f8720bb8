"""The ClickHouse query type for the grafana-foundation-sdk builders.

The SDK has no builder for the ``grafana-clickhouse-datasource`` plugin, so this is one: the
target fields the plugin reads (``editorType: sql``, ``rawSql``, ``format``, ``queryType``)
beside the ``refId``/``datasource`` every query carries.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.common import DataSourceRef

DATASOURCE_UID = "clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class Format(IntEnum):
    """The plugin's result formats (``format`` in the target)."""

    TIME_SERIES = 0
    TABLE = 1


QUERY_TYPES = {Format.TIME_SERIES: "timeseries", Format.TABLE: "table"}


class ClickHouseQuery(cogvariants.Dataquery):
    """One SQL target of the ClickHouse datasource."""

    def __init__(self, raw_sql: str, fmt: Format, ref_id: str = "A") -> None:
        self.raw_sql = raw_sql
        self.format = fmt
        self.ref_id = ref_id

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": DATASOURCE.to_json(),
            "editorType": "sql",
            "format": int(self.format),
            "queryType": QUERY_TYPES[self.format],
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(data["rawSql"], Format(data.get("format", Format.TABLE)), data.get("refId", "A"))


class ClickHouse(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for :class:`ClickHouseQuery`: ``ClickHouse(sql).time_series()`` or ``.table()``."""

    def __init__(self, raw_sql: str) -> None:
        self._query = ClickHouseQuery(raw_sql.strip(), Format.TABLE)

    def time_series(self) -> Self:
        self._query.format = Format.TIME_SERIES
        return self

    def table(self) -> Self:
        self._query.format = Format.TABLE
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._query.ref_id = ref_id
        return self

    def build(self) -> ClickHouseQuery:
        return self._query
