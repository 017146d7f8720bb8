"""The distinct keys written per input table (streams.sinks.written): estimate, merge, persistence."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sinks.warehouse import TABLE_KEYS
from streams.sinks.written import STANDARD_ERROR, WrittenKeys, forgotten, note_forgotten, written_keys


def rows(ids: range) -> list[dict[str, str]]:
    return [{"account_id": "acme.com", "interaction_id": f"email:<{n}@x>"} for n in ids]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 60_000), st.integers(0, 5_000), st.integers(1, 3))
def test_estimates_merge_and_repeats(tmp_path_factory, n: int, overlap: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("written")
    first = WrittenKeys(folder, "worker-1", TABLE_KEYS)
    second = WrittenKeys(folder, "replay-2", TABLE_KEYS)
    half = n // 2
    for _ in range(repeats):  # retries and redeliveries write the same keys again
        first.add("interactions", rows(range(0, half + overlap)))
        second.add("interactions", rows(range(half, n)))
    first.add("account_health", [{"account_id": "a", "as_of": "x"}])  # scores are not counted
    second.flush()
    first.flush()  # folds the other file in
    assert sorted(p.name for p in folder.glob("*.hll")) == ["worker-1.hll"]
    estimate = written_keys(folder).get("interactions", 0.0)
    distinct = max(n, half + overlap)
    assert abs(estimate - distinct) <= 4 * STANDARD_ERROR * distinct + 2
    assert "account_health" not in written_keys(folder)


def test_forgotten_rows_add_up(tmp_path: Path) -> None:
    note_forgotten(tmp_path, {"contacts": 1, "interactions": 3})
    note_forgotten(tmp_path, {"interactions": 2})
    assert forgotten(tmp_path) == {"contacts": 1, "interactions": 5}
