"""Forget in stored broker batches (streams.runtime.broker_data): the batch rewrite and its rules.

The layout below is the one Tansu's ``s3://`` engine writes (seen under a real
``broker-data``; tests/runtime/test_forget.py runs the real broker end to end): a batch per
object, named by its base offset, base offset 0 inside, and the group's committed offsets as
JSON objects.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from streams.runtime.broker_data import END_REFRESH_KEY, purge_broker, rebuilt, records_of
from streams.runtime.forget import holds
from streams.runtime.stored_state import pack

NONE, GZIP, LZ4 = 0, 1, 3

records = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=40)),
        st.one_of(st.none(), st.binary(max_size=200)),
        st.integers(0, 10**6),
        st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=5)), max_size=2),
    ),
    min_size=1,
    max_size=30,
)


def batch(
    items: list[tuple[bytes | None, bytes | None, int, list[tuple[str, bytes]]]], codec: int = NONE
) -> bytes:
    builder = DefaultRecordBatchBuilder(2, codec, False, -1, -1, -1, 1 << 30)
    start = 1_700_000_000_000
    for offset, (key, value, dt, headers) in enumerate(items):
        builder.append(offset, start + dt, key, value, headers)
    return bytes(builder.build())


@settings(max_examples=60, deadline=None)
@given(records, st.sampled_from([NONE, GZIP, LZ4]), st.data())
def test_a_rebuilt_batch_keeps_every_other_record_and_offset(items, codec, data) -> None:  # type: ignore[no-untyped-def]
    body = batch(items, codec)
    base = data.draw(st.integers(0, 10**9))
    assert rebuilt(body, base, set()) == body  # nothing replaced: the very same bytes
    replace = set(data.draw(st.sets(st.integers(0, len(items) - 1))))
    out = rebuilt(body, base, {base + i for i in replace})
    parsed = DefaultRecordBatch(out)
    assert parsed.validate_crc()
    assert parsed.last_offset_delta == len(items) - 1 and parsed.base_offset == 0
    for record, (key, value, _, headers), original in zip(
        parsed, items, DefaultRecordBatch(body), strict=True
    ):
        assert record.offset == original.offset and record.timestamp == original.timestamp
        if record.offset in replace:
            assert (record.key, record.value, record.headers) == (END_REFRESH_KEY, None, [])
        else:
            assert (record.key, record.value) == (key, value)
            assert [(k, v) for k, v in record.headers] == headers


def stored(
    root: Path, topic: str, partition: int, base: int, items: list[tuple[bytes | None, bytes | None]]
) -> Path:
    folder = (
        root
        / "rapport"
        / "clusters"
        / "tansu_cluster"
        / "topics"
        / topic
        / "partitions"
        / f"{partition:010d}"
    )
    (folder / "records").mkdir(parents=True, exist_ok=True)
    path = folder / "records" / f"{base:020d}.batch.o"
    path.write_bytes(batch([(k, v, 0, []) for k, v in items]))
    return path


def committed(root: Path, topic: str, partition: int, offset: int) -> None:
    folder = root / "rapport" / "clusters" / "tansu_cluster" / "groups" / "consumers" / "rapport" / "offsets"
    path = folder / topic / "partitions" / f"{partition:010d}.json.o"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({"offset": offset, "leader_epoch": None}))


def values(path: Path, base: int) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in records_of(path.read_bytes(), base)]


def test_the_rules_inputs_changelogs_outputs(tmp_path: Path) -> None:
    person, joann = "ann@acme.com", "joann@acme.com"
    mail = lambda who: orjson.dumps({"schema": "raw_email/1", "payload": {"from": who}})  # noqa: E731
    forget = orjson.dumps({"schema": "forget/1", "payload": {"address": person}})
    letter = orjson.dumps(
        {"schema": "dead_letter/1", "payload": {"original_b64": "RnJvbTogQW5uQEFDTUUuY29t"}}
    )
    # raw: consumed up to offset 12 (the batch at 10 holds offsets 10..13)
    raw = stored(tmp_path, "raw", 0, 10, [(b"acme.com", mail(person)), (b"acme.com", mail(joann))] * 2)
    committed(tmp_path, "raw", 0, 12)
    inter = stored(tmp_path, "interactions", 1, 0, [(None, forget), (b"x", letter)])
    committed(tmp_path, "interactions", 1, 0)  # the forget request is not committed yet
    # a changelog: an old state holding the person, the current one without; the directory key
    state = stored(
        tmp_path,
        "rapport-account-state-changelog",
        0,
        0,
        [(b'"acme.com"', pack({"buyers": [person]})), (b'"acme.com"', pack({"buyers": [joann]}))],
    )
    current = stored(tmp_path, "rapport-account-state-changelog", 1, 0, [(b'"b.com"', pack({"x": [person]}))])
    directory = stored(
        tmp_path,
        "rapport-contact-directory-changelog",
        0,
        0,
        [(b'"address:' + person.encode() + b'"', b"[1]")],
    )
    scores = stored(tmp_path, "scores", 0, 0, [(b"acme.com", orjson.dumps({"why": f"{person} silent"}))])

    report = purge_broker(tmp_path, "rapport", person, holds)

    tomb = (END_REFRESH_KEY, None)
    assert values(raw, 10) == [
        tomb,
        (b"acme.com", mail(joann)),
        (b"acme.com", mail(person)),
        (b"acme.com", mail(joann)),
    ]
    assert values(inter, 0) == [tomb, (b"x", letter)]  # the request goes; the unread letter stays
    assert values(state, 0)[0] == tomb and values(state, 0)[1][1] == pack({"buyers": [joann]})
    assert values(current, 0) == [(b'"b.com"', pack({"x": [person]}))]  # the table's current value
    assert values(directory, 0) == [tomb]  # the key is the person
    assert values(scores, 0) == [tomb]
    assert report.kept_unconsumed == 2 and report.kept_current == 1
    assert report.replaced == {
        "raw": 1,
        "interactions": 1,
        "rapport-account-state-changelog": 1,
        "rapport-contact-directory-changelog": 1,
        "scores": 1,
    }
    again = purge_broker(tmp_path, "rapport", person, holds)
    assert again.replaced == {} and again.batches == 0
    assert purge_broker(tmp_path, "rapport", "nobody@acme.com", holds).replaced == {}
