"""Poison input: 10,000 malformed or hostile messages mixed into good traffic on ``raw``, and a
few written straight to ``interactions`` (the second hop, which carries ``interaction_batch/1``).

Every bad message must land in ``rejected_events`` with its reason, every good one must be
scored exactly as ``replay`` scores the good ones alone, and the worker must never restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from streams.config import TOPIC_INTERACTIONS, TOPIC_RAW, Settings
from streams.contracts import BATCH_SCHEMA
from streams.deadletters import MAX_ORIGINAL
from streams.identity.resolver import Resolver
from streams.runtime.producer import EventProducer
from streams.runtime.stack import Stack
from streams.sinks.warehouse import connect
from streams.sources.dataset import SourceRecord, read_dataset
from tests.runtime.live_vs_replay import assert_same, replay_snapshot, snapshot

pytestmark = pytest.mark.broker

BAD = 10_000
GOOD_EMAIL = {
    "message_id": "<m@x>",
    "from": "ann@demo-seller.com",
    "to": ["bob@buyer.example"],
    "sent_at": "2025-07-02T10:00:00.000Z",
}


def envelope(i: int, **changes: Any) -> dict[str, Any]:
    document = {
        "schema": "raw_email/1",
        "event_id": f"<poison-{i}@x>",
        "source": "poison",
        "occurred_at": "2025-07-02T10:00:00.000Z",
        "payload": {**GOOD_EMAIL, "message_id": f"<poison-{i}@x>"},
    }
    payload = changes.pop("payload", {})
    document.update(changes)
    document["payload"].update(payload)
    return document


def hostile(i: int) -> bytes:
    """The i-th bad message; each kind in turn, each one unique (so each is its own dead letter)."""
    kinds = [
        lambda: b"{not json " + str(i).encode(),
        lambda: orjson.dumps(envelope(i)).replace(b"poison-", b"\xff\xfe-"),  # invalid UTF-8
        lambda: orjson.dumps(envelope(i, payload={"to": "bob@buyer.example"})),  # wrong type
        lambda: orjson.dumps(envelope(i, event_id=i)),  # wrong type
        lambda: orjson.dumps({k: v for k, v in envelope(i).items() if k != "event_id"}),  # missing id
        lambda: orjson.dumps(envelope(i, payload={"message_id": ""})),  # empty id
        lambda: orjson.dumps(envelope(i, occurred_at="9999-12-31T23:59:59.000Z")),
        lambda: orjson.dumps(envelope(i, payload={"sent_at": "9999-12-31T23:59:59Z"})),
        lambda: orjson.dumps(envelope(i, payload={"subject": "x" * 20_000})),  # huge field
        lambda: b"[" * 100_000 + str(i).encode() + b"]" * 100_000,  # JSON bomb: deep nesting
        lambda: orjson.dumps(envelope(i, payload={"detail": {"a": [[[[{"b": [i]}]]]]}})),  # unknown nested
        lambda: orjson.dumps(envelope(i, schema="raw_email/99")),  # unknown schema
        lambda: orjson.dumps([i, "an array, not an envelope"]),
        lambda: orjson.dumps(envelope(i, payload={"to": ["ann2@demo-seller.com"]})),  # seller only
    ]
    if i % 2500 == 0:  # a few messages over the 1 MB contract limit
        return orjson.dumps(envelope(i, payload={"subject": "y" * 1_100_000}))
    return kinds[i % len(kinds)]()


def second_hop() -> list[bytes]:
    """Bad messages on ``interactions``: unreadable, a batch breaking its own schema, and a batch
    of broken records (a payload of the wrong shape, a batch inside a batch)."""

    def batch(records: list[Any]) -> bytes:
        return orjson.dumps(
            {
                "schema": BATCH_SCHEMA,
                "event_id": f"batch:poison-{len(records)}",
                "source": "poison",
                "occurred_at": "2025-07-02T10:00:00.000Z",
                "payload": {"account_id": "buyer.example", "records": records},
            }
        )

    tick = {
        "schema": "tick/1",
        "event_id": "t",
        "source": "poison",
        "occurred_at": "2025-07-02T10:00:00.000Z",
    }
    return [
        b"{not json on interactions",
        batch([]),
        batch(
            [
                {**tick, "payload": {"wall_time": "noon"}},
                {**orjson.loads(batch([])), "event_id": "batch:nested"},
            ]
        ),
    ]


def mixed(good: list[SourceRecord], bad: int) -> Iterator[SourceRecord | bytes]:
    """Good records with the bad messages spread evenly between them."""
    per_good = bad // len(good) + 1
    sent = 0
    for record in good:
        yield record
        for _ in range(min(per_good, bad - sent)):
            yield hostile(sent)
            sent += 1
    while sent < bad:
        yield hostile(sent)
        sent += 1


@pytest.fixture(scope="module")
def poisoned_run(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("poison")
    settings = Settings.from_env(
        {
            "RAPPORT_HOME": str(home / "home"),
            "RAPPORT_SELLER_DOMAINS": "demo-seller.com",
            "RAPPORT_BROKER_STORAGE": "memory",  # as the suite (tests/conftest.py)
        }
    )
    good = [item for item in read_dataset(small_dataset) if isinstance(item, SourceRecord)]
    with Stack(settings) as stack:
        stack.start_workers()
        first_pid = stack.workers[0].pid
        undelivered: list[BaseException] = []
        bad_sender = KafkaProducer(bootstrap_servers=stack.bootstrap, max_request_size=4 * 1024 * 1024)
        with EventProducer(stack.bootstrap, Resolver(settings.seller_domains)) as producer:
            for n, item in enumerate(mixed(good, BAD)):
                if isinstance(item, SourceRecord):
                    producer.send(item)
                else:
                    sent = bad_sender.send(TOPIC_RAW, value=item, key=f"poison-{n}".encode())
                    sent.add_errback(undelivered.append)
                if n == len(good) // 2:
                    for value in second_hop():
                        sent = bad_sender.send(TOPIC_INTERACTIONS, value=value, key=b"buyer.example")
                        sent.add_errback(undelivered.append)
        bad_sender.flush(timeout=300)  # 150 MB of bad messages; slow on a loaded machine
        bad_sender.close()
        assert not undelivered, f"{len(undelivered)} bad messages not delivered: {undelivered[:3]}"
        status = stack.wait_drained(len(good) + BAD, timeout_s=300)
        alive = stack.workers[0].poll() is None
    client = connect(settings.warehouse_url)
    try:
        rejected = client.query(
            "SELECT hex(original), reason, stage FROM rapport.rejected_events FINAL"
        ).result_rows
    finally:
        client.close()
    return {
        "status": status,
        "first_pid": first_pid,
        "alive": alive,
        "rejected": rejected,
        "live": snapshot(settings.warehouse_url),
        "replayed": replay_snapshot(good, home / "replay", settings),
    }


def test_every_bad_message_is_a_dead_letter_with_its_reason(poisoned_run: dict[str, Any]) -> None:
    rejected = [row for row in poisoned_run["rejected"] if row[2] == "resolve"]
    assert len(rejected) == BAD
    assert all(len(reason) > 10 for _, reason, _ in rejected)
    expected = {hostile(i)[:MAX_ORIGINAL] for i in range(BAD)}
    assert {bytes.fromhex(original) for original, _, _ in rejected} == expected
    reasons = " ".join(reason for _, reason, _ in rejected)
    for words in ("not valid JSON", "exceeds the 1000000 limit", "only seller-side", "unknown schema"):
        assert words in reasons


def test_bad_messages_on_the_second_hop_are_dead_letters_record_by_record(
    poisoned_run: dict[str, Any],
) -> None:
    reasons = sorted(reason for _, reason, stage in poisoned_run["rejected"] if stage == "score")
    assert len(poisoned_run["rejected"]) == BAD + len(reasons)
    assert len(reasons) == 4  # the unreadable one, the bad batch, and each broken record on its own
    assert reasons[0].startswith("interaction_batch/1 record 0: tick/1:") and "wall_time" in reasons[0]
    assert reasons[1].startswith("interaction_batch/1 record 1: interaction_batch/1:")
    assert reasons[2].startswith("interaction_batch/1: ") and "records" in reasons[2]
    assert reasons[3].startswith("not valid JSON")


def test_every_good_message_is_scored_as_replay_scores_it(poisoned_run: dict[str, Any]) -> None:
    assert_same(poisoned_run["live"], poisoned_run["replayed"])


def test_the_worker_never_restarts(poisoned_run: dict[str, Any]) -> None:
    status = poisoned_run["status"]
    assert poisoned_run["alive"] and status["pid"] == poisoned_run["first_pid"]
    assert status["counters"]["resolve_rejected"] == BAD
