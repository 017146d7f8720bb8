"""The `rapport` command: exit codes and messages at the edges."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from click.testing import CliRunner

from streams.cli import main
from streams.sources.dataset import read_labels


def test_generate_writes_files_and_labels(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate", "--accounts", "3", "--days", "20", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        "email.jsonl",
        "meeting.jsonl",
        "crm.jsonl",
        "labels.json",
    }
    assert len(read_labels(tmp_path)["accounts"]) == 3


def test_generate_rejects_bad_start(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate", "--start", "July", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--start" in result.output


def test_bad_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["warehouse", "migrate"],
        env={"RAPPORT_WAREHOUSE_URL": "mysql://x", "RAPPORT_HOME": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "RAPPORT_WAREHOUSE_URL" in result.output
    assert "Traceback" not in result.output


def test_worker_without_bootstrap_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["worker"], env={"RAPPORT_HOME": str(tmp_path), "RAPPORT_KAFKA_BOOTSTRAP": ""}
    )
    assert result.exit_code != 0
    assert "rapport up" in str(result.exception) + result.output


def test_explain_account_and_meeting_after_a_replay(small_dataset: Path, tmp_path: Path) -> None:
    """The real command in a subprocess (chDB allows one open folder per process)."""
    import subprocess
    import sys

    env = {**os.environ, "RAPPORT_HOME": str(tmp_path), "RAPPORT_SELLER_DOMAINS": "demo-seller.com"}

    def rapport(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert rapport("replay", str(small_dataset)).returncode == 0
    found = rapport(
        "warehouse",
        "query",
        "SELECT account_id, meeting_id FROM rapport.meeting_preparedness FINAL ORDER BY meeting_id LIMIT 1",
        "--json",
    )
    row = orjson.loads(found.stdout.strip().splitlines()[0])
    account = rapport("explain", "account", row["account_id"], "--since", "2025-08-01", "--json")
    view = orjson.loads(account.stdout)
    assert (
        view["account_id"] == row["account_id"] and view["signals"] and view["since"]["date"] == "2025-08-01"
    )
    meeting = rapport("explain", "meeting", row["meeting_id"])
    assert (
        meeting.returncode == 0
        and "preparedness" in meeting.stdout
        and "invited in good time" in meeting.stdout
    )
    missing = rapport("explain", "account", "no-such-account.example")
    assert missing.returncode == 1
    assert "no health scores for account 'no-such-account.example'" in missing.stderr
