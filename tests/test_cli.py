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


def test_replay_of_a_mixed_folder_reads_each_file_by_its_type(tmp_path: Path) -> None:
    """30 .eml files and one .ics in one folder: all 31 read (the .ics made it a calendar folder)."""
    import subprocess
    import sys

    folder = tmp_path / "mixed"
    folder.mkdir()
    for n in range(30):
        (folder / f"{n}.eml").write_text(
            f"Message-ID: <mixed-{n}@buyer-mixed.com>\nFrom: bob@buyer-mixed.com\n"
            f"To: ann@demo-seller.com\nDate: Mon, 03 Mar 2025 {n % 24:02d}:00:00 +0000\n\n"
        )
    (folder / "meeting.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:mixed-meeting\r\n"
        "DTSTART:20250304T100000Z\r\nDTEND:20250304T110000Z\r\nORGANIZER:mailto:ann@demo-seller.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@buyer-mixed.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    env = {**os.environ, "RAPPORT_HOME": str(tmp_path / "home"), "RAPPORT_SELLER_DOMAINS": "demo-seller.com"}
    done = subprocess.run(
        [sys.executable, "-m", "streams", "replay", str(folder), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["read"], summary["rejected"]) == (31, 0)


def test_a_change_feed_in_a_subfolder_of_a_mixed_folder_is_read(tmp_path: Path) -> None:
    from streams.sources.dataset import Rejection
    from streams.sources.reader import read_sources

    fixture = Path(__file__).parent / "sources" / "fixtures" / "crm-changes" / "flat.jsonl"
    feed = tmp_path / "mixed" / "crm" / "changes.jsonl"
    feed.parent.mkdir(parents=True)
    feed.write_bytes(fixture.read_bytes().splitlines(keepends=True)[0])  # one account CREATE
    (tmp_path / "mixed" / "note.eml").write_text("not a message\n")
    items = list(read_sources([tmp_path / "mixed"]))
    assert sorted(type(i).__name__ for i in items) == ["Rejection", "SourceRecord"]
    (record,) = [i for i in items if not isinstance(i, Rejection)]
    assert record.envelope.schema == "crm_account/1" and record.envelope.payload["name"] == "Acme Labs"
