"""The embedded Tansu broker: starts, answers, creates topics, and never outlives its owner."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from streams.config import ALL_TOPICS, Settings
from streams.runtime.broker import BrokerError, EmbeddedBroker, _port_open, ensure_topics


def test_starts_creates_topics_and_stops(settings: Settings) -> None:
    with EmbeddedBroker(settings) as broker:
        pid, port = broker.process.pid, broker.port  # type: ignore[union-attr]
        assert ensure_topics(broker.bootstrap, 3) == list(ALL_TOPICS)
        assert ensure_topics(broker.bootstrap, 3) == []  # idempotent
        client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        described = client.describe_topics(["interactions"])
        client.close()
        assert len(described[0]["partitions"]) == 3
    assert not _port_open(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stops_on_error_inside_the_block(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="boom"), EmbeddedBroker(settings) as broker:
        process = broker.process
        raise RuntimeError("boom")
    assert process is not None and process.poll() is not None


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-tansu"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_missing_binary_names_the_variable(settings: Settings) -> None:
    with pytest.raises(BrokerError, match="RAPPORT_BROKER_BIN"):
        EmbeddedBroker(replace(settings, broker_bin="/nonexistent/tansu")).start()


def test_port_that_never_opens_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    broker = EmbeddedBroker(replace(settings, broker_bin=script(tmp_path, "sleep 30")), startup_timeout_s=1)
    with pytest.raises(BrokerError, match="did not open"):
        broker.start()
    assert broker.process is None  # stopped, not orphaned


def test_binary_that_exits_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    broker = EmbeddedBroker(replace(settings, broker_bin=script(tmp_path, "exit 3")), startup_timeout_s=2)
    with pytest.raises(BrokerError, match="exited at start"):
        broker.start()


def test_a_record_the_broker_never_acknowledged_fails_the_flush(settings: Settings) -> None:
    """The ingest producer checks every send: with the broker gone, the records it could not
    deliver make ``flush`` raise with their count instead of vanishing."""
    from streams.identity.resolver import Resolver
    from streams.runtime.producer import EventProducer
    from streams.sources.dataset import read_dataset, write_dataset
    from streams.sources.synthetic import generate

    folder = settings.home / "dataset"
    events, labels = generate(2, seed=3, days=10)
    write_dataset(folder, events, labels)
    items = list(read_dataset(folder))[:20]
    with EmbeddedBroker(settings) as broker:
        ensure_topics(broker.bootstrap, 2)
        producer = EventProducer(
            broker.bootstrap, Resolver(settings.seller_domains), delivery_timeout_ms=4000
        )
        producer.send_all(items[:10])
        producer.flush()  # all acknowledged
        assert producer.failed == 0
        assert broker.process is not None
        broker.process.kill()
        broker.process.wait()
        producer.send_all(items[10:])
        with pytest.raises(BrokerError, match="10 records were not acknowledged"):
            producer.flush()
        producer.producer.close(timeout=1)
