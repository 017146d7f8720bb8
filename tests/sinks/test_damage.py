"""Warehouse damage is loud (issue 18, row 13): a corrupted part that ClickHouse detaches on start
is reported in one line by the first command that opens the warehouse, and ``rapport warehouse
check`` exits non-zero on damage or on counts that disagree with the stream's own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.sources.dataset import write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate


@pytest.fixture
def home(tmp_path: Path) -> Path:
    events, labels = generate(3, seed=4, days=40)
    write_dataset(tmp_path / "data", events, labels)
    home = tmp_path / "home"
    done = rapport(home, "replay", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr[-2000:]
    return home


def rapport(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (chDB: one open warehouse folder per process)."""
    env = {**os.environ, "RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN}
    env.pop("RAPPORT_WAREHOUSE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "streams", *args], env=env, capture_output=True, text=True, timeout=300
    )


def health_rows(home: Path) -> int:
    done = rapport(home, "warehouse", "query", "SELECT count() FROM rapport.account_health FINAL", "--json")
    return int(orjson.loads(done.stdout.strip().splitlines()[-1])["count()"])


def test_a_corrupted_part_is_reported_on_start_and_fails_the_check(home: Path) -> None:
    ok = rapport(home, "warehouse", "check")
    assert ok.returncode == 0 and "warehouse OK" in ok.stdout + ok.stderr, ok.stderr
    before = health_rows(home)
    parts = sorted((home / "warehouse" / "data" / "rapport" / "account_health").glob("all_*/data.bin"))
    assert parts
    largest = max(parts, key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[:100])  # a truncated column file

    opened = rapport(home, "warehouse", "query", "SELECT count() FROM rapport.account_health FINAL", "--json")
    assert opened.returncode == 0
    damage = [line for line in opened.stderr.splitlines() if "WAREHOUSE DAMAGED" in line]
    assert len(damage) == 1 and "account_health" in damage[0] and "broken-on-start" in damage[0]
    after = int(orjson.loads(opened.stdout.strip().splitlines()[-1])["count()"])
    assert after < before  # what ClickHouse did silently before: the part's rows are gone
    missing = int(re.findall(r"\(([\d,]+) account_health rows missing\)", damage[0])[0].replace(",", ""))
    assert missing > 0

    check = rapport(home, "warehouse", "check", "--json")
    assert check.returncode == 1
    report = orjson.loads(check.stdout.strip().splitlines()[-1])
    assert not report["ok"] and report["tables"]["account_health"]["missing"] == missing
    assert [d[0] for d in report["damage"]["detached"]] == ["account_health"]


def test_the_check_compares_the_stream_s_counts(home: Path) -> None:
    status = {"rows_written": {"interactions": 10, "sellers": 7}, "counters": {}}
    (home / "worker-status.json").write_bytes(orjson.dumps(status))
    check = rapport(home, "warehouse", "check", "--json")
    report = orjson.loads(check.stdout.strip().splitlines()[-1])
    assert check.returncode == 1
    assert report["problems"] == ["sellers: the stream wrote 7 rows and the warehouse holds none"]
    assert (
        report["tables"]["interactions"]["written"] == 10 and report["tables"]["interactions"]["stored"] > 0
    )


def test_a_part_deleted_outright_is_found_by_the_distinct_keys_written(home: Path) -> None:
    """No trace of a deleted part stays inside ClickHouse; the distinct keys every writer wrote
    (streams.sinks.written, kept under RAPPORT_HOME) still know the rows were there."""
    import shutil

    ok = rapport(home, "warehouse", "check", "--json")
    report = orjson.loads(ok.stdout.strip().splitlines()[-1])
    assert ok.returncode == 0, report["problems"]
    interactions = report["tables"]["interactions"]
    assert interactions["stored"] > 0
    assert abs(interactions["expected"] - interactions["stored"]) <= 0.01 * interactions["stored"] + 1
    parts = sorted((home / "warehouse" / "data" / "rapport" / "interactions").glob("all_*"))
    largest = max(parts, key=lambda p: sum(f.stat().st_size for f in p.rglob("*")))
    shutil.rmtree(largest)
    check = rapport(home, "warehouse", "check", "--json")
    report = orjson.loads(check.stdout.strip().splitlines()[-1])
    assert check.returncode == 1
    (problem,) = [p for p in report["problems"] if p.startswith("interactions:")]
    assert "rows were lost" in problem
    assert report["tables"]["interactions"]["stored"] < interactions["stored"]
