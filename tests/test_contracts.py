"""Every event schema: a valid example passes, broken ones fail with a readable reason."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import (
    BATCH_BYTES,
    BATCH_SCHEMA,
    ContractError,
    Envelope,
    batches,
    check,
    decode,
    make,
    schema_names,
    unbatch,
)
from streams.deadletters import dead_letter
from streams.identity.resolver import Resolver
from streams.sources.synthetic import SELLER_DOMAIN, generate

T = "2026-03-02T10:00:00.000Z"


def examples() -> dict[str, dict[str, Any]]:
    events, _ = generate(3, seed=1, days=40)
    found: dict[str, dict[str, Any]] = {}
    resolver = Resolver([SELLER_DOMAIN])
    for event in events:
        found.setdefault(event.schema, event.payload)
        for out in resolver.resolve(event):
            found.setdefault(out.envelope.schema, out.envelope.payload)
    explanation = {"signals": {"agenda": {"value": 1, "contribution": 20}}, "events": ["e1"]}
    found["preparedness/1"] = {
        "meeting_id": "meeting:1",
        "account_id": "a.com",
        "starts_at": T,
        "seller": "s@x.com",
        "score": 80.0,
        "explanation": explanation,
        "model_version": "prep-0.1",
    }
    found["interaction_value/1"] = {
        "interaction_id": "email:1",
        "account_id": "a.com",
        "occurred_at": T,
        "score": 55.5,
        "explanation": explanation,
        "model_version": "value-0.1",
    }
    found["account_health/1"] = {
        "account_id": "a.com",
        "as_of": "2026-03-02",
        "score": 71.0,
        "tier": "healthy",
        "depth": 3,
        "explanation": explanation,
        "model_version": "health-0.1",
        "version": 4,
    }
    found["alert/1"] = {
        "alert_id": "a1",
        "account_id": "a.com",
        "raised_at": T,
        "kind": "tier_drop",
        "severity": "warning",
        "reason": "healthy to watch",
        "model_version": "alerts-0.1",
    }
    found["dead_letter/1"] = dead_letter("raw", "resolve", "bad", b"\xff").payload
    found["tick/1"] = {"wall_time": 1.5}
    found["forget/1"] = {"address": "o'brien@acme.com", "requested_at": 1.5}
    found["crm_seller/1"] = {
        "seller_id": "ann-lee",
        "name": "Ann Lee",
        "email": None,
        "manager": "Bo",
        "team": "East",
        "updated_at": T,
    }
    found["envelope/1"] = {
        "schema": "tick/1",
        "event_id": "t",
        "source": "x",
        "occurred_at": T,
        "payload": {"wall_time": 1.0},
    }
    found["interaction_batch/1"] = {"account_id": "a.com", "records": [dict(found["envelope/1"])]}
    return found


EXAMPLES = examples()


def test_every_schema_has_an_example() -> None:
    assert sorted(EXAMPLES) == schema_names()


@pytest.mark.parametrize("name", schema_names())
def test_valid_example_passes(name: str) -> None:
    check(name, EXAMPLES[name])


@pytest.mark.parametrize("name", schema_names())
def test_missing_required_field_is_named(name: str) -> None:
    from streams.contracts import _schemas

    required = _schemas()[name]["required"]
    broken = copy.deepcopy(EXAMPLES[name])
    del broken[required[0]]
    with pytest.raises(ContractError, match=required[0]) as error:
        check(name, broken)
    assert str(error.value).startswith(f"{name}: ")


@pytest.mark.parametrize("name", schema_names())
def test_wrong_type_and_unknown_field_fail(name: str) -> None:
    from streams.contracts import _schemas

    field = _schemas()[name]["required"][0]
    broken = copy.deepcopy(EXAMPLES[name])
    broken[field] = {"not": "this"}
    with pytest.raises(ContractError, match=field):
        check(name, broken)
    extra = copy.deepcopy(EXAMPLES[name])
    extra["surprise"] = 1
    with pytest.raises(ContractError):
        check(name, extra)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1,2]", "expected a JSON object"),
        (b'{"schema":"raw_email/1"}', "event_id"),
        (b"x" * 1_000_001, "exceeds"),
    ],
)
def test_decode_reasons_are_readable(raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode(raw)


def test_year_9999_is_rejected() -> None:
    envelope = {
        "schema": "raw_email/1",
        "event_id": "m",
        "source": "x",
        "occurred_at": "9999-01-01T00:00:00Z",
        "payload": EXAMPLES["raw_email/1"],
    }
    with pytest.raises(ContractError, match="occurred_at"):
        decode(orjson.dumps(envelope))


@given(st.binary(max_size=2000))
def test_decode_of_arbitrary_bytes_returns_or_rejects(data: bytes) -> None:
    with contextlib.suppress(ContractError):
        decode(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_decode_of_arbitrary_json_returns_or_rejects(document: Any) -> None:
    with contextlib.suppress(ContractError):
        decode(
            json.dumps(
                {
                    "schema": "raw_email/1",
                    "event_id": "e",
                    "source": "s",
                    "occurred_at": T,
                    "payload": document,
                }
            ).encode()
        )


def _tick(index: int) -> Envelope:
    return make("tick/1", f"t{index}", "rapport", T, {"wall_time": float(index)})


def _letter(index: int, size: int) -> Envelope:
    payload = {
        "rejected_id": f"r{index}",
        "topic": "raw",
        "stage": "resolve",
        "reason": "r",
        "original_b64": "A" * size,
    }
    return make("dead_letter/1", f"d{index}", "rapport", T, payload)


@given(st.lists(st.integers(min_value=0, max_value=120_000), min_size=1, max_size=40))
def test_batches_carry_every_record_in_order_within_the_size_bound(sizes: list[int]) -> None:
    records = [_letter(i, size) for i, size in enumerate(sizes)]
    messages = list(batches("a.com", records))
    carried: list[Envelope] = []
    for message in messages:
        envelope = decode(message)
        assert envelope.schema == BATCH_SCHEMA and envelope.payload["account_id"] == "a.com"
        members, broken = unbatch(envelope)
        assert broken == []
        # over the bound only when one record alone is bigger
        assert len(members) == 1 or len(message) < BATCH_BYTES + 500
        carried.extend(members)
    assert carried == records


def test_unbatch_names_each_broken_record_and_keeps_the_rest() -> None:
    good = _tick(1).to_dict()
    nested = decode(next(batches("a.com", [_tick(2)]))).to_dict()
    bad_payload = {**_tick(3).to_dict(), "payload": {"wall_time": "noon"}}
    batch = make(
        BATCH_SCHEMA, "b", "rapport", T, {"account_id": "a.com", "records": [good, nested, bad_payload, {}]}
    )
    members, broken = unbatch(batch)
    assert [m.event_id for m in members] == ["t1"]
    reasons = [reason for _, reason in broken]
    assert reasons[0] == f"{BATCH_SCHEMA} record 1: a batch inside a batch"
    assert reasons[1].startswith(f"{BATCH_SCHEMA} record 2: tick/1:") and "wall_time" in reasons[1]
    assert reasons[2].startswith(f"{BATCH_SCHEMA} record 3: envelope/1:")
    assert orjson.loads(broken[1][0]) == bad_payload


def test_a_single_envelope_unbatches_to_itself() -> None:
    assert unbatch(_tick(1)) == ([_tick(1)], [])
