"""Every command block of the README that reads or ingests runs here, as written.

A block is run with bash in a fresh folder holding a demo home (`.rapport`, the demo's dataset
replayed: the same rows `rapport demo` leaves, in a tenth of the time), with `.venv/bin/rapport`
meaning this environment's `rapport` and `../shared/data` the real data folder. A block that is
not meant to run says so on the line above it (`<!-- readme-test: not run (why) -->`); one that
states its output says what it prints (`<!-- readme-test: prints TEXT -->`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
MARK = re.compile(r"<!-- readme-test: (not run \((?P<why>[^)]+)\)|prints (?P<prints>.+?)) -->")


def readme_blocks() -> list[tuple[int, str, re.Match[str] | None]]:
    """(line, commands, the mark above it) for every ```bash block."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks = []
    for n, line in enumerate(lines):
        if line.strip() == "```bash":
            end = next(i for i in range(n + 1, len(lines)) if lines[i].strip() == "```")
            above = next((lines[i] for i in range(n - 1, -1, -1) if lines[i].strip()), "")
            blocks.append((n + 1, "\n".join(lines[n + 1 : end]), MARK.search(above)))
    return blocks


def test_every_block_is_run_or_says_why_not() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 6
    for line, commands, mark in blocks:
        if mark and mark["why"]:
            continue
        assert ".venv/bin/rapport" in commands, f"README line {line}: a block to run calls .venv/bin/rapport"


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose `.rapport` holds what `rapport demo` leaves (100 accounts, seed 7)."""
    folder = tmp_path_factory.mktemp("readme")
    rapport = [sys.executable, "-m", "streams"]
    env = {
        **os.environ,
        "RAPPORT_HOME": str(folder / ".rapport"),
        "RAPPORT_SELLER_DOMAINS": "demo-seller.com",
    }
    data = folder / ".rapport" / "demo-data"
    for args in (["generate", "--accounts", "100", "--seed", "7", "--out", str(data)], ["replay", str(data)]):
        done = subprocess.run([*rapport, *args], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return folder


def test_the_readme_commands_work_as_written(demo_folder: Path, real_data: Path) -> None:
    script = shutil.which("rapport", path=str(Path(sys.executable).parent))
    assert script, f"no `rapport` beside {sys.executable}: install the package (pip install -e .)"
    env = {**os.environ, "RAPPORT_HOME": str(demo_folder / ".rapport"), "COLUMNS": "80"}
    env.pop("RAPPORT_SELLER_DOMAINS", None)  # as a new user has it
    env.pop("RAPPORT_IDLE_FLUSH_S", None)  # the production default (tests/conftest.py sets 1 s)
    ran = 0
    for line, commands, mark in readme_blocks():
        if mark and mark["why"]:
            continue
        written = commands.replace(".venv/bin/rapport", script).replace("../shared/data", str(real_data))
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", written],
            cwd=demo_folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"README line {line} failed:\n{commands}\n{done.stderr[-2000:]}"
        assert done.stdout.strip() and "Traceback" not in done.stderr, f"README line {line}"
        if mark and mark["prints"]:
            assert mark["prints"] in done.stdout, f"README line {line} no longer prints {mark['prints']}"
        ran += 1
    assert ran >= 5
    assert list((demo_folder / ".rapport" / "reviews").glob("*.pdf"))  # the review block wrote PDFs
