"""Replay's input: the reader process gives exactly the parts this process gives, errors come back
as themselves, a dead reader is an error (never a short replay), and closing stops the reader.

The reader is a real ``spawn`` process (what ``rapport replay`` starts); the steps run through the
one scoring loop over in-memory ports, so chunk sizes can be varied without a warehouse.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.identity.resolver import Resolver
from streams.runtime.loop import run
from streams.runtime.replay_input import (
    Chunk,
    InputEnd,
    Part,
    ReaderError,
    ReplaySummary,
    StepEnd,
    read_ahead,
    replay_parts,
    replay_steps,
)
from streams.scoring.engine import Scoring
from streams.sources.dataset import Rejection, SourceRecord, read_dataset, write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import memory_ports

DOMAINS = (SELLER_DOMAIN,)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five dirty accounts over 60 days, plus a broken line and a repeated one (a dead letter and
    a duplicate on the way)."""
    folder = tmp_path_factory.mktemp("replay-input")
    events, labels = generate(5, seed=11, days=60, dirty=True)
    write_dataset(folder, events, labels)
    email = folder / "email.jsonl"
    lines = email.read_bytes().splitlines(keepends=True)
    email.write_bytes(b"".join([*lines, b"{not json\n", lines[3]]))
    return folder


def inline_parts(folder: Path, batch: int, chunk_size: int) -> tuple[list[Part], ReplaySummary]:
    summary = ReplaySummary()
    parts = list(replay_parts(read_dataset(folder), Resolver(DOMAINS), summary, None, batch, chunk_size))
    return parts, summary


def test_the_reader_process_sends_the_parts_this_process_makes(dataset: Path) -> None:
    here, summary_here = inline_parts(dataset, 20_000, 1_000)
    summary = ReplaySummary()
    there = list(read_ahead(partial(read_dataset, dataset), DOMAINS, summary))
    assert there == here
    assert (summary.read, summary.rejected, summary.copies) == (
        summary_here.read,
        summary_here.rejected,
        summary_here.copies,
    )
    assert summary.read > 300 and summary.rejected >= 1, "the broken line is read and rejected"
    assert isinstance(here[-1], InputEnd) and sum(isinstance(p, Chunk) for p in here) >= 1
    assert not multiprocessing.active_children()


def rows_of(parts: Iterator[Part]) -> tuple[dict[str, list[str]], list[int]]:
    ports = memory_ports()
    counted: list[int] = []
    asyncio.run(run(replay_steps(parts, counted.append), Scoring(ports.store, 86400.0), ports))
    return {t: sorted(map(repr, rows)) for t, rows in ports.sink.rows.items()}, counted


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 400), st.integers(1, 300))
def test_chunks_change_nothing_but_when_scoring_may_start(batch: int, chunk_size: int) -> None:
    """Steps hold ``batch`` records and letters (the last fewer) whatever the chunk size, and the
    loop writes the rows of the same steps given whole."""
    folder = DATASET[0]
    parts, _ = inline_parts(folder, batch, chunk_size)
    whole, _ = inline_parts(folder, batch, 10**9)
    sizes, size = [], 0
    for part in parts:
        if isinstance(part, Chunk):
            assert len(part.records) + len(part.letters) < chunk_size + 20  # one item's records more
            size += len(part.records) + len(part.letters)
        elif isinstance(part, StepEnd):
            sizes.append(size)
            size = 0
    assert all(s >= batch for s in sizes[:-1]) and sizes[-1] >= 1
    assert [p.origin for p in parts if isinstance(p, StepEnd)] == [
        p.origin for p in whole if isinstance(p, StepEnd)
    ]
    rows, counted = rows_of(iter(parts))
    assert rows == rows_of(iter(whole))[0]
    assert counted == sizes, "progress reports each step's records and letters once it committed"


DATASET: list[Path] = []


@pytest.fixture(autouse=True)
def _dataset_for_hypothesis(dataset: Path) -> Iterator[None]:
    DATASET[:] = [dataset]  # hypothesis' @given tests cannot take function-scoped fixtures
    yield


def test_an_error_in_the_reader_is_raised_as_itself(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="not a dataset folder"):
        list(read_ahead(partial(read_dataset, missing), DOMAINS, ReplaySummary()))
    with pytest.raises(ReaderError, match="reading the input failed: Unpicklable: two 2"):
        list(read_ahead(partial(raising_reader, missing), DOMAINS, ReplaySummary()))
    assert not multiprocessing.active_children()


def test_a_reader_that_dies_is_an_error_not_a_short_input(dataset: Path) -> None:
    summary = ReplaySummary()
    with pytest.raises(ReaderError, match=r"exited \(code 3\) before the end of the input"):
        list(read_ahead(partial(dying_reader, dataset), DOMAINS, summary))
    assert summary.read == 0


def test_closing_early_stops_the_reader(dataset: Path) -> None:
    parts = read_ahead(partial(read_dataset, dataset), DOMAINS, ReplaySummary(), None)
    assert isinstance(next(parts), Chunk)
    assert multiprocessing.active_children()
    parts.close()
    assert not multiprocessing.active_children()


# --- readers for the reader process (module level: they are pickled by reference) ----------------


class Unpicklable(Exception):
    def __init__(self, what: str, count: int) -> None:
        super().__init__(f"{what} {count}")


def raising_reader(folder: Path) -> Iterator[SourceRecord | Rejection]:
    raise Unpicklable("two", 2)
    yield from read_dataset(folder)  # pragma: no cover


def dying_reader(folder: Path) -> Iterator[SourceRecord | Rejection]:
    for index, item in enumerate(read_dataset(folder)):
        if index == 10:
            os._exit(3)
        yield item
