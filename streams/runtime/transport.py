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
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

FAUST_FETCH_WAIT_MS = 1500

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
