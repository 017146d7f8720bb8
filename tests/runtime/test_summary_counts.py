"""The ingest summary says what lands in the warehouse, category by category, on a real mailbox.

presto-k (../shared/data/enron/presto-k) through a one-shot `rapport ingest email --json`: its
``accepted`` and ``automated`` are the interactions (``automated`` 0 and 1), its ``rejected`` and
reasons the dead letters. (Before, dead-lettered automated mail counted as automated: the summary
said 235 automated where the warehouse held 64, and 1,683 rejected for 1,854 dead letters.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.config import Settings
from streams.sinks.warehouse import connect
from streams.sources.reader import reason_group

pytestmark = pytest.mark.broker


def test_the_presto_k_summary_matches_the_warehouse(real_data: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({"RAPPORT_HOME": str(home)})
    env = {**os.environ, "RAPPORT_HOME": str(home), "RAPPORT_BROKER_STORAGE": "memory"}
    env.pop("RAPPORT_KAFKA_BOOTSTRAP", None)
    mailbox = real_data / "enron" / "presto-k"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "ingest",
            "email",
            str(mailbox),
            "--seller-domain",
            "enron.com",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout.strip().splitlines()[-1])
    client = connect(settings.warehouse_url)
    try:
        kinds = dict(
            client.query(
                "SELECT automated, count() FROM rapport.interactions FINAL GROUP BY automated"
            ).result_rows
        )
        letters = client.query(
            "SELECT reason FROM rapport.rejected_events FINAL WHERE stage IN ('ingest', 'resolve')"
        ).result_rows
    finally:
        client.close()
    assert summary["read"] == 2204 and summary["duplicates"] > 0
    assert (summary["accepted"], summary["automated"]) == (kinds.get(0, 0), kinds.get(1, 0))
    assert summary["accepted"] > 100 and summary["automated"] > 0
    assert summary["rejected"] == len(letters)
    assert summary["rejection_reasons"] == dict(Counter(reason_group(r) for (r,) in letters))
