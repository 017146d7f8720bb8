"""Entry point of one worker process (``python -m streams worker``)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import faust
from faust.worker import Worker

from streams.config import TOPIC_DEADLETTER, TOPIC_INTERACTIONS, TOPIC_RAW, Settings
from streams.runtime.app import END_REFRESH_KEY, create_app
from streams.runtime.changelog import STATE_CHANGELOG
from streams.runtime.children import watch_parent
from streams.sinks.read_endpoint import ReadEndpoint

log = logging.getLogger(__name__)


# The topics a worker reads: its inputs, and the changelogs it recovers its tables from (faust:
# <app id>-<table>-changelog).
READ_TOPICS = (
    TOPIC_RAW,
    TOPIC_INTERACTIONS,
    TOPIC_DEADLETTER,
    STATE_CHANGELOG,
    "{app_id}-contact-directory-changelog",
)


def refresh_end_offsets(settings: Settings) -> None:
    """Write one tombstone, for a key that never exists, to every non-empty partition it reads.

    A restarted Tansu (the embedded broker) reports a partition's end offset as the base offset
    of its newest batch plus one, whatever that batch's length, until the next write to it
    (measured: 43 of 72,200 acknowledged records beyond the reported end of a changelog, and 219
    beyond the ends of ``raw`` after a stop before the worker caught up). faust recovers a table
    only up to that end, so the worker would miss the newest states and CRM contacts; and a
    worker that restarted on such a ``raw`` stalled short of its end (1,910 of 2,083
    interactions). The one-record tombstone becomes the newest batch, so every end is true
    again. Agents pass it over (``END_REFRESH_KEY``); on Kafka it is a harmless no-op.
    """
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
    try:
        existing = consumer.topics()
        # a first start has no topics yet (asking for their partitions would create them)
        names = [t.format(app_id=settings.app_id) for t in READ_TOPICS]
        partitions = [
            TopicPartition(topic, p)
            for topic in names
            if topic in existing
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions) if partitions else {}
    finally:
        consumer.close()
    stale = [tp for tp in partitions if ends.get(tp, 0) > 0]
    if not stale:
        return
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", max_block_ms=10000)
    try:
        for tp in stale:
            try:
                producer.send(tp.topic, key=END_REFRESH_KEY, value=None, partition=tp.partition)
            except Exception as exc:
                log.warning("could not refresh the end offset of %s[%d]: %s", tp.topic, tp.partition, exc)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def quiet_worker(app: faust.App, level: str) -> Worker:
    """faust's worker without its terminal spinner, which sets the root logger to DEBUG: every
    debug call on the per-message path then built a log record only for the handler to drop it
    (about 5 % of a worker's CPU)."""
    worker = Worker(app, loglevel=level, quiet=True)
    worker.spinner = None
    return worker


def run_worker(settings: Settings) -> None:
    """Run the faust worker in the foreground until SIGTERM/SIGINT (graceful stop).

    The local RocksDB tables are a cache of the changelog topics. A worker that was killed can
    leave them ahead of the changelog (faust then refuses to start with a ConsistencyError), so
    after an unclean stop they are removed and rebuilt from the changelog.
    """
    if not settings.kafka_bootstrap:
        raise SystemExit(
            "rapport worker: RAPPORT_KAFKA_BOOTSTRAP is not set; start one with `rapport up` "
            "(embedded broker and worker), or set it to a running Kafka's host:port"
        )
    watch_parent()
    level = os.environ.get("RAPPORT_LOG_LEVEL", "WARNING").upper()
    logging.getLogger("streams").setLevel(level)
    running = settings.state_dir / "worker-running"
    if running.exists():
        log.warning("the last worker in %s did not stop cleanly: rebuilding its tables", settings.state_dir)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    # Also after a clean stop: a restarted Tansu reports the end of a partition as the base offset
    # of its newest batch plus one, whatever that batch's length, and the durable broker keeps
    # multi-record batches across restarts (faust then sees a ConsistencyError).
    refresh_end_offsets(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    running.touch()
    app = create_app(settings, idle_flush_s=float(os.environ.get("RAPPORT_IDLE_FLUSH_S", "5")))
    reads = serve_reads(settings)
    try:
        quiet_worker(app, level).execute_from_commandline()
    finally:
        running.unlink(missing_ok=True)
        if reads is not None:
            reads.close()


def serve_reads(settings: Settings) -> ReadEndpoint | None:
    """On chDB this process holds the warehouse: serve other processes' reads of it."""
    if not settings.warehouse_url.startswith("chdb://"):
        return None
    from streams.sinks.warehouse import connect, migrate

    folder = Path(settings.warehouse_url.removeprefix("chdb://"))
    client = connect(settings.warehouse_url)  # held open: this process's chDB engine
    migrate(client)  # readers find the tables from their first query on
    return ReadEndpoint(folder, keep=client)
