"""``rapport status``: what runs under a home, how far it got and what the warehouse holds.

Apart from :mod:`streams.runtime.status` (the worker's own status file), because it reads the
broker through :mod:`streams.runtime.stack`, which itself reads that status file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.runtime.status import read_status


def _process_role(argv: list[str]) -> str:
    text = " ".join(argv)
    if "object_store" in text:
        return "broker object store"
    if " broker " in f" {text} ":
        return "broker (Tansu)"
    if "worker" in argv:
        return "worker"
    return argv[0] if argv else "?"


def _last_problem(logs: list[Path]) -> str | None:
    """The last ERROR or WARNING line of the workers' and the broker's logs."""
    found: tuple[float, str] | None = None
    for log in logs:
        try:
            lines = log.read_text(errors="replace").splitlines()[-400:]
        except FileNotFoundError:
            continue
        for line in reversed(lines):
            if "ERROR" in line or "WARNING" in line or "Traceback" in line:
                stamp = log.stat().st_mtime
                if found is None or stamp > found[0]:
                    found = (stamp, f"{log.name}: {line.strip()[:300]}")
                break
    return found[1] if found else None


def pipeline_status(settings: Any) -> dict[str, Any]:
    """What runs under ``settings.home``, how far it got, and what the warehouse holds.

    Reads only files, the broker's offsets and the warehouse (through the worker's read endpoint
    while a worker holds an embedded one), so it is safe while ``rapport up`` runs.
    """
    from streams.runtime.broker import read_bootstrap_file
    from streams.runtime.children import alive, recorded
    from streams.runtime.home_lock import holder
    from streams.runtime.stack import lag_by_topic
    from streams.sinks.warehouse import TABLE_KEYS, connect, damage_report
    from streams.sources.connector import read_connector_statuses

    home: Path = settings.home
    report: dict[str, Any] = {"home": str(home), "owner": holder(home)}
    report["processes"] = [
        {"role": _process_role(e["argv"]), "pid": e["pid"], "since": e["started"]}
        for e in recorded(home)
        if alive(int(e["pid"]))
    ]
    bootstrap = settings.kafka_bootstrap or read_bootstrap_file(settings.bootstrap_file)
    report["broker"] = bootstrap
    if bootstrap:
        try:
            report["lag"] = lag_by_topic(bootstrap, settings.app_id)
        except Exception as exc:
            report["lag"] = f"cannot read: {exc}"
    worker = read_status(settings.status_file) or {}
    report["events_processed"] = int(worker.get("counters", {}).get("events", 0))
    report["pending_events"] = worker.get("pending_events")
    report["worker_updated"] = worker.get("updated")
    report["last_error"] = _last_problem([*sorted(home.glob("worker-*.log")), home / "broker.log"])
    report["connectors"] = read_connector_statuses(home)
    try:
        client = connect(settings.warehouse_url)
        try:
            report["warehouse_rows"] = {
                table: int(client.query(f"SELECT count() FROM rapport.{table} FINAL").result_rows[0][0])
                for table in TABLE_KEYS
            }
            damage = damage_report(client)
            report["warehouse_damage"] = damage.line() if damage else None
        finally:
            client.close()
    except Exception as exc:
        report["warehouse_rows"] = f"cannot read: {str(exc).splitlines()[0][:200]}"
    return report
