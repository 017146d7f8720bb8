"""Stored account states: compressed JSON that reads back exactly, and the older plain JSON too."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.identity.resolver import Resolver
from streams.runtime.stored_state import pack, unpack
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import run_in_memory

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text()
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=20), json_values, max_size=10))
def test_pack_then_unpack_gives_the_state_back(state: dict[str, Any]) -> None:
    assert unpack(pack(state)) == state
    assert unpack(orjson.dumps(state)) == state  # what workers stored before compression


def test_a_scored_state_is_stored_several_times_smaller() -> None:
    events, _ = generate(3, seed=5, days=60)
    resolver = Resolver([SELLER_DOMAIN])
    records = [(o.account_id, o.envelope) for e in events for o in resolver.resolve(e)]
    states = run_in_memory(records, [len(records)], 86400.0).store
    assert states
    for state in states.values():
        plain = orjson.dumps(state)
        assert unpack(pack(state)) == orjson.loads(plain)
        assert len(pack(state)) * 2 < len(plain)


@pytest.mark.parametrize("data", [b"\x78\x01garbage", b"[1, 2]", b"\x00\x01", b"{not json"])
def test_an_unreadable_state_is_an_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="stored account state"):
        unpack(data)
