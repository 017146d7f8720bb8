"""The `rapport` command: exit codes and messages at the edges."""

from __future__ import annotations

from pathlib import Path

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
