"""The filter of pruned event ids: never forgets an id; rarely claims one it never held."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.scoring import bloom


@given(st.lists(st.text(min_size=1, max_size=40), max_size=300), st.text(min_size=1, max_size=40))
def test_every_added_id_is_held(ids: list[str], other: str) -> None:
    held = bloom.with_ids("", ids)
    assert all(bloom.may_hold(held, key) for key in ids)
    assert bloom.with_ids(held, []) == held  # adding nothing changes nothing
    if not ids:
        assert not bloom.may_hold(held, other)


def test_false_positives_stay_rare_at_200_ids() -> None:
    held = bloom.with_ids("", [f"<{n}@mail>" for n in range(200)])
    false = sum(bloom.may_hold(held, f"<other-{n}@mail>") for n in range(5000))
    assert false / 5000 < 0.05  # 2 % expected (module docstring)
