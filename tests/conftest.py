"""Shared fixtures: isolated settings per test, small generated datasets, the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.config import Settings

# Subject hashes are keyed (streams.sources.redact.subject_key): tests that read sources without a
# RAPPORT_HOME of their own would otherwise make a key file under the working directory.
os.environ.setdefault("RAPPORT_SUBJECT_KEY", "rapport-tests-subject-key")
# Workers (which inherit this environment) settle pending events after 1 s of idle input instead
# of 5 s: every pipeline run here ends on that idle tick, so each waited 4-6 s more for nothing.
# Idle ticks at any time give the rows of replay (tests/runtime/test_loop.py), so what the live
# tests compare is the same. tests/test_readme.py and tests/runtime/test_live.py keep the default.
os.environ.setdefault("RAPPORT_IDLE_FLUSH_S", "1")
from streams.sources.dataset import write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh RAPPORT_HOME under the test's temporary folder."""
    # the memory broker (7x faster to drain, bench/broker.py); tests/runtime/test_live.py runs
    # the durable default
    env = {
        "RAPPORT_HOME": str(tmp_path / "home"),
        "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN,
        "RAPPORT_BROKER_STORAGE": "memory",
    }
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six accounts over 60 days: every persona kind has a chance, small enough for e2e."""
    folder = tmp_path_factory.mktemp("small-dataset")
    events, labels = generate(6, seed=11, days=60)
    write_dataset(folder, events, labels)
    return folder


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/data (or RAPPORT_REAL_DATA); tests that need it skip when it is absent."""
    folder = Path(os.environ.get("RAPPORT_REAL_DATA", Path(__file__).parents[2] / "shared" / "data"))
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent (set RAPPORT_REAL_DATA to its location)")
    return folder


@pytest.fixture
def warehouse(settings: Settings):
    """A migrated chDB warehouse for this test. chDB allows one open folder per process, so
    the client is closed afterwards."""
    from streams.sinks.warehouse import connect, migrate

    client = connect(settings.warehouse_url)
    migrate(client)
    yield client
    client.close()


# The longest test files go first (--durations on the 2-core machine). With two xdist workers
# taking whole files (README, .ci/run), a long file picked up last runs alone at the end:
# test_kill.py (one test, about 150 s) did while the other worker sat idle, as xdist queued
# files by test count (pyproject.toml turns that off). Each worker starts with two files, the
# 1st and 3rd or the 2nd and 4th here: about 500 s each.
LONGEST_FIRST = (
    "tests/views/test_views.py",
    "tests/runtime/test_kill.py",
    "tests/test_readme.py",
    "tests/runtime/test_live.py",
    "tests/runtime/test_forget.py",
    "tests/runtime/test_poison.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the longest files first; every other file and each file's own order stay as they are."""
    root = config.rootpath

    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable
