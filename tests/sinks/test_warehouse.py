"""The warehouse sink on the real engine (chDB through clickhouse-connect)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.sinks.warehouse import Migration, Sink, WarehouseError, collapse, migrate, migrations

TABLES = {
    "accounts",
    "contacts",
    "opportunities",
    "interactions",
    "meeting_preparedness",
    "interaction_value",
    "account_health",
    "alerts",
    "rejected_events",
}


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return client.query(sql).result_rows


def interaction(i: int, version: int = 0) -> dict[str, Any]:
    return {
        "interaction_id": f"email:{i}",
        "account_id": "a.com",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "channel": "email",
        "direction": "outbound",
        "kind": "email",
        "sellers": ["s@x.com"],
        "buyers": ["b@a.com"],
        "thread_id": "",
        "in_reply_to": "",
        "status": "",
        "automated": 0,
        "match_method": "domain",
        "match_confidence": 0.8,
        "source_event_id": f"m{i}",
        "detail": "{}",
        "version": version,
    }


def test_migrations_apply_once_and_twice_is_a_no_op(warehouse: Any) -> None:
    tables = {r[0] for r in rows(warehouse, "SHOW TABLES FROM rapport")}
    assert tables >= TABLES
    assert migrate(warehouse) == []  # second time: nothing to do
    recorded = rows(warehouse, "SELECT version, name FROM rapport.schema_migrations FINAL ORDER BY version")
    assert recorded == [(m.version, m.name) for m in migrations()]


def test_column_contracts(warehouse: Any) -> None:
    def columns(table: str) -> dict[str, str]:
        return dict(
            rows(
                warehouse,
                f"SELECT name, type FROM system.columns WHERE database='rapport' AND table='{table}'",
            )
        )

    assert columns("accounts")["domains"] == "Array(String)"
    assert (
        columns("interactions")["direction"]
        == "Enum8('outbound' = 1, 'inbound' = 2, 'internal' = 3, 'mutual' = 4)"
    )
    for table in ("meeting_preparedness", "interaction_value", "account_health"):
        cols = columns(table)
        assert cols["score"] == "Float64"
        assert cols["explanation"] == "String"
        assert "model_version" in cols
    assert {"as_of", "tier"} <= set(columns("account_health"))


def test_an_edited_applied_migration_is_refused(warehouse: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in migrations()]
    monkeypatch.setattr("streams.sinks.warehouse.migrations", lambda: edited)
    with pytest.raises(WarehouseError, match="changed after it was applied"):
        migrate(warehouse)


def test_retried_batch_with_same_token_is_written_once_and_versions_replace(warehouse: Any) -> None:
    sink = Sink(warehouse)
    batch = {"interactions": [interaction(1), interaction(2)]}
    sink.write_now(batch, "interactions/0/0-1")
    sink.write_now(batch, "interactions/0/0-1")  # a retry after an unknown outcome
    assert rows(warehouse, "SELECT count() FROM rapport.interactions") == [(2,)]  # even without FINAL
    sink.write_now({"interactions": [interaction(1, version=3)]}, "interactions/0/2-2")
    assert rows(warehouse, "SELECT interaction_id, version FROM rapport.interactions FINAL ORDER BY 1") == [
        ("email:1", 3),
        ("email:2", 0),
    ]


def test_the_same_input_with_other_rows_is_written(warehouse: Any) -> None:
    """A restarted worker may settle other events from the same batch than before it was killed:
    those rows must land, not be dropped as a repeat of the first insert."""
    sink = Sink(warehouse)
    origin = "interactions/0/0-9;digest"
    sink.write_now({"interactions": [interaction(1)]}, origin)
    sink.write_now({"interactions": [interaction(1), interaction(2), interaction(3)]}, origin)
    assert rows(warehouse, "SELECT interaction_id FROM rapport.interactions FINAL ORDER BY 1") == [
        ("email:1",),
        ("email:2",),
        ("email:3",),
    ]


def test_collapse_keeps_highest_version_per_key() -> None:
    kept = collapse("interactions", [interaction(1, 2), interaction(1, 5), interaction(1, 1), interaction(2)])
    assert sorted((r["interaction_id"], r["version"]) for r in kept) == [("email:1", 5), ("email:2", 0)]


class FlakyClient:
    """Fault injection at the sink's client boundary: the first inserts fail."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real, self.failures, self.calls = real, failures, 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("warehouse unavailable (injected)")
        return self.real.insert(*args, **kwargs)


def test_failed_inserts_are_retried_until_written(warehouse: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.sinks.warehouse.backoff", lambda: iter([0.01] * 100))
    retries: list[str] = []
    client = FlakyClient(warehouse, failures=3)
    stats = Sink(client, on_retry=lambda table, exc, delay: retries.append(str(exc))).write_now(
        {"interactions": [interaction(7)]}, "interactions/0/7-7"
    )
    assert stats.retries == 3 and len(retries) == 3 and "injected" in retries[0]
    assert rows(warehouse, "SELECT count() FROM rapport.interactions FINAL") == [(1,)]


def test_unreachable_server_error_names_url() -> None:
    from streams.sinks.warehouse import connect

    with pytest.raises(WarehouseError, match=r"http://127\.0\.0\.1:9"):
        connect("http://127.0.0.1:9")


def test_a_chdb_folder_another_process_holds_briefly_opens_once_it_is_free(tmp_path: Path) -> None:
    """A reader that opens the folder just as a worker starts could make that worker exit (chDB
    lets one process hold a folder): the worker now waits for the short hold to end."""
    from streams.sinks.warehouse import connect

    folder = tmp_path / "warehouse"
    hold = (
        "import time, clickhouse_connect; "
        f"c = clickhouse_connect.get_client(dsn='chdb://{folder}'); c.query('SELECT 1'); "
        "print('held', flush=True); time.sleep(1.5)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        client = connect(f"chdb://{folder}")
        waited = time.monotonic() - started
        assert holder.poll() is not None and waited > 0.5  # it did wait for the holder to exit
        assert client.query("SELECT 1").result_rows == [(1,)]
        client.close()
    finally:
        holder.kill()
        holder.wait()
