"""faust's Kafka transport with a configurable consumer fetch wait (``RAPPORT_FETCH_WAIT_MS``).

faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to change it.
Kafka answers a waiting fetch as soon as data arrives, but the embedded Tansu broker lets it run
out its wait: measured here, a message sent to an idle partition reached a consumer after
0.38 s with 1500 ms and after 1 ms with 100 ms, and every hop pays it (p95 latency at 2,000
events/s: 2.8 s with 1500 ms, 1.0 s with 100 ms). Rapport's default is 100 ms
(``RAPPORT_FETCH_WAIT_MS``, streams/config.py). It was faust's 1500 ms while a worker of a
two-worker group sometimes never fetched its share after the group formed with 100 ms
(``tests/runtime/test_scale_out.py`` stalled in 3 of 10 runs on 2026-11-28); since the stall
diagnostics and the one-engine rewrite it passed 30 consecutive runs with 100 ms (10 on
2026-12-02, 20 on 2026-12-03, 22-31 s each), and the suite now runs it on the default.

It stalled once more under the full suite on 2026-12-05, and the stall report showed why: faust
had dropped records fetched across the rebalance and never fetched them again. A worker now
seeks such a partition back once it stayed so for 20 s (:class:`UnreadFetches`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

FAUST_FETCH_WAIT_MS = 1500
REFETCH_AFTER_S = 20.0

log = logging.getLogger(__name__)


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by consumer.start()
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_wait_ms", FAUST_FETCH_WAIT_MS)
        return consumer


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """faust counts offsets it never handed to a stream as done (meant for compacted topics).
        Rapport's inputs are neither compacted nor transactional, so such a jump is a message the
        worker skipped: said in its log, with the offsets, instead of passing unseen."""
        log.warning(
            "consumer: %s[%d] jumped from offset %d to %d; faust counts the offsets between as done",
            tp.topic,
            tp.partition,
            offset_from - 1,
            offset_to,
        )
        await super()._add_gap(tp, offset_from, offset_to)


class Transport(driver.Transport):
    Consumer = Consumer


class App(faust.App):
    """A faust app on :class:`Transport` (the broker URL's scheme stays ``kafka://``).

    ``rapport_agents`` and ``rapport_topics`` name what :func:`streams.runtime.app.create_app`
    declared, for agent tests (faust's ``test_context``) and benchmarks.
    """

    fetch_wait_ms: int = FAUST_FETCH_WAIT_MS
    rapport_agents: dict[str, faust.types.AgentT[Any]]
    rapport_topics: dict[str, faust.types.TopicT]

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


def consumer_positions(app: faust.App) -> dict[str, dict[str, Any]]:
    """For each assigned partition, "topic[p]": what faust and aiokafka each know of it.

    ``read`` and ``committed`` are faust's (last offset handed to a stream, offset committed),
    ``acked`` the offsets acked but not yet committed, ``gaps`` the offset ranges faust waits to
    fill, ``position`` and ``highwater`` aiokafka's (next fetch, broker's end at the last fetch),
    ``fetched_s_ago`` the time since its last fetch answer. Written while the worker is idle, so
    a stalled run says which of them stopped (an idle worker with lag left no trace before).
    """
    consumer = app.consumer
    try:
        aio = consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
        assignment = aio._subscription.subscription.assignment
    except Exception:  # not started, or between generations
        return {}
    now_ms = time.time() * 1000
    report: dict[str, dict[str, Any]] = {}
    for tp in sorted(assignment.tps if assignment else ()):
        state = assignment.state_value(tp)
        key = faust.types.TP(tp.topic, tp.partition)
        stamp = getattr(state, "timestamp", None)
        report[f"{tp.topic}[{tp.partition}]"] = {
            "read": consumer._read_offset.get(key),  # type: ignore[attr-defined]
            "committed": consumer._committed_offset.get(key),  # type: ignore[attr-defined]
            "acked": len(consumer._acked.get(key, ())),  # type: ignore[attr-defined]
            "gaps": [(i.begin, i.end) for i in consumer._gap.get(key, ())][:5],  # type: ignore[attr-defined]
            "position": getattr(state, "position", None) if state.has_valid_position else None,
            "highwater": getattr(state, "highwater", None),
            "paused": bool(getattr(state, "paused", False)),
            "fetched_s_ago": round((now_ms - stamp) / 1000, 1) if stamp else None,
        }
    return report


def refetch_offset(partition: Mapping[str, Any]) -> int | None:
    """Where to read a partition again from when aiokafka moved past records faust never passed on.

    None while nothing is missing: aiokafka's ``position`` is at most one past faust's ``read``
    (or its ``committed`` when nothing was read). Otherwise the lowest offset that may not have
    been scored: faust's read offset means the last offset passed on after a fetch but the next
    one after its own seek (``Consumer.perform_seek``), so the earlier of ``read + 1`` and
    ``committed`` (the next offset to read in Kafka terms). Reading one batch twice is safe
    (scoring counts a repeated event as a duplicate); skipping one is not.
    """
    position, read, committed = partition["position"], partition["read"], partition["committed"]
    if position is None or partition["paused"]:
        return None
    passed_on = read + 1 if read is not None else (committed or 0)
    if position <= passed_on:
        return None
    known = [o for o in (read + 1 if read is not None else None, committed) if o is not None]
    return min(known, default=0)


class UnreadFetches:
    """Partitions whose fetched records faust dropped across a rebalance, due for a seek back.

    Seen in ``tests/runtime/test_scale_out.py`` under the full suite (2026-12-05): after the
    second worker joined, worker one held raw[0,2,4,6] with aiokafka's position at each log end
    (78, 102, 153, 274) and faust's read and committed offsets None, for 90 s, until the test
    gave up. faust drops records fetched across a rebalance (``Consumer.getmany`` stops at a new
    generation and skips partitions outside its snapshot of active ones; streams skip messages
    of an older generation, faust-streaming PR #223) and relies on the seek to committed offsets
    at assignment; records fetched after that seek and dropped are never fetched again, so the
    group keeps its lag until a restart. Nothing is lost (nothing was committed), nothing moves.

    :meth:`due` gives such a partition once it stayed the same for ``after_s`` (a fetch that is
    merely being passed on moves within milliseconds), with the offset to seek back to.
    """

    def __init__(self, topics: Collection[str], after_s: float | None = None) -> None:
        self.topics = set(topics)
        self.after_s = REFETCH_AFTER_S if after_s is None else after_s  # read now: fault tests set it
        self.since: dict[str, tuple[tuple[Any, ...], float]] = {}

    def due(self, report: Mapping[str, Mapping[str, Any]], now: float) -> dict[str, int]:
        """``report`` as :func:`consumer_positions` gives it; "topic[p]" -> offset to seek to."""
        seen: dict[str, tuple[tuple[Any, ...], float]] = {}
        due: dict[str, int] = {}
        for name, partition in report.items():
            offset = refetch_offset(partition) if name.rsplit("[", 1)[0] in self.topics else None
            if offset is None:
                continue
            key = (partition["position"], partition["read"], partition["committed"])
            before = self.since.get(name)
            since = before[1] if before is not None and before[0] == key else now
            if now - since >= self.after_s:
                due[name] = offset  # its clock starts again after the seek
            else:
                seen[name] = (key, since)
        self.since = seen
        return due


async def refetch(app: faust.App, due: Mapping[str, int]) -> None:
    """Seek each partition in ``due`` back (faust's own ``seek_wait``, run on the consumer's
    thread, which also resets faust's read offset so the records are passed on again)."""
    offsets = {}
    for name, offset in due.items():
        topic, partition = name.rsplit("[", 1)
        offsets[faust.types.TP(topic, int(partition.rstrip("]")))] = offset
        log.warning("consumer: %s was fetched past but never read; reading again from %d", name, offset)
    await app.consumer.seek_wait(offsets)
