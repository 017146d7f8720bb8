"""Hypothesis strategies shared by the parser tests."""

from __future__ import annotations

from hypothesis import strategies as st


def json_documents(keys: list[str]) -> st.SearchStrategy[object]:
    """Nested JSON values whose object keys come from ``keys`` (so parsers meet their own fields)."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(keys), inner, max_size=5),
        max_leaves=25,
    )
