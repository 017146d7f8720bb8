"""Pipeline throughput, latency and state size on the embedded broker, in one run.

    python bench/pipeline.py [--accounts 100] [--rate EVENTS_PER_S] [--latency-seconds 15] [--json]
                             [--setting RAPPORT_NAME=VALUE ...]

What it measures, in this order, on one embedded Tansu broker with Rapport's topic layout:

1. **passthrough** — the generated dataset (``--accounts``, seed 7) is produced to ``raw``
   first; then a no-op faust agent (``async for event in stream.events()``, nothing else; its
   own consumer group, same app settings as the worker) drains it. Events/s from its first
   event to its last: faust's own per-hop limit here.
2. **live** — a Rapport worker (:class:`streams.runtime.stack.Stack`: resolve → interactions →
   score → chDB) drains the same ``raw`` topic from the start. Its status file is polled every
   20 ms; the rate is taken between the first status write with scored events and the write that
   reached the last one (steady state: the group join and the first batch are left out), in raw
   events (scored + dead-lettered by resolve).
3. **latency** — with that worker still running and idle, a second dataset (seed 8) is produced at
   a fixed ``--rate`` (default half the live rate just measured: the target is set at 50 % of
   capacity) for ``--latency-seconds``. It starts the day after the first one ends, as a live feed
   goes on: its accounts are the first dataset's (the generator names them the same), so a second
   year starting where the first did would be all late records (measured: 21,474 of 30,000 late,
   each rescoring its account from the warehouse: p95 30 s), and it has as many accounts as the
   first, so an event costs what it cost in the live phase (:func:`following`); the wall time of
   each send is recorded
   by event id. After the worker drained and stopped (chDB lets one process hold the warehouse
   folder, so nothing can read it while the worker runs), the warehouse is opened here and each
   interaction's ``ingested_at`` (migration 004: ``now64(3)`` filled by ClickHouse at insert) is
   compared with its source event's send time. The insert is synchronous and a batch is visible
   when it returns, so this is produced → queryable up to that insert's own duration (tens of ms).
   Only events that become interactions count (CRM records write other tables). The median of the
   first and of the last fifth of the sends shows whether a queue built up (the worker slower than
   the rate).
4. **state** — the worker's RocksDB ``account-state`` table (its partitions, read-only after the
   worker stopped): the bytes of the per-account states as stored (compressed JSON, which is also
   what the changelog carries) divided by the active buyer contacts they track (buyer addresses
   with a recorded inbound or outbound interaction); ``state_json_bytes_per_contact`` is the same
   before compression.
5. **group** — a consumer group of two workers on a fresh embedded broker drains the same
   dataset (each worker with its own chDB folder: one process may hold a folder). Events/s of
   the group from the first to the last status write of either: the "more workers" lever on this
   2-core machine, where the broker shares the cores.
6. **replay** — ``bench/replay.py --accounts N --json`` in its own process (same dataset; its own
   chDB folder, since one process may open only one), with its I/O floor (read, decode, resolve
   and insert the interaction rows only; see that file) and the pure core (resolve and the
   scoring loop over in-memory ports): ``core_to_passthrough`` is a ceiling for
   ``live_to_passthrough``, since one live worker does the core's work plus faust's on one thread.

Before the passthrough, **broker floor**: aiokafka alone (no faust, no consumer group) drains the
same ``raw`` messages: the broker's own limit on this machine. The ratios the targets are set
in — ``live_to_passthrough``, ``live_to_broker_floor``, ``replay_to_live``, ``replay_to_floor``,
``group_speedup`` — are printed last and taken within the run.

Prints a table; with ``--json`` stdout is one JSON object and the table goes to stderr.
``--setting RAPPORT_NAME=VALUE`` runs the live, latency and group workers with a setting other
than its default (an experiment; the passthrough agent and replay keep the defaults, which are
what the targets are measured on). Each run is also written to
``bench/results/pipeline-<UTC time>.json`` with the machine (cores, load, Python, platform), the
arguments and the git commit. The machine is shared, so read figures together with the load
averages recorded.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from record import machine, record

from streams.config import TOPIC_DEADLETTER, TOPIC_RAW, Settings
from streams.contracts import Envelope
from streams.identity.resolver import Resolver
from streams.runtime.collector import relax_collector
from streams.runtime.producer import EventProducer
from streams.runtime.stack import Stack
from streams.runtime.status import read_status
from streams.runtime.stored_state import unpack
from streams.scoring.state import AccountState
from streams.sinks.warehouse import connect
from streams.sources.dataset import SourceRecord, source_of
from streams.sources.synthetic import SELLER_DOMAIN, generate

BENCH = Path(__file__).resolve().parent
SEED, LATENCY_SEED = 7, 8
GROUP_WORKERS = 2


def records(events: Iterable[Envelope]) -> list[SourceRecord]:
    return [SourceRecord(source_of(e.schema), e, e.to_bytes()) for e in events]


# --- passthrough -------------------------------------------------------------------------------


def passthrough_worker(bootstrap: str, expected: int, out: Path, home: Path) -> None:
    """A faust app whose one agent only counts ``raw``; writes first/last event times to ``out``.
    The same app class (consumer fetch wait), worker settings and garbage-collector thresholds as
    a Rapport worker."""
    from streams.runtime.transport import App
    from streams.runtime.worker import quiet_worker

    relax_collector()

    settings = Settings.from_env({"RAPPORT_HOME": str(home), "RAPPORT_KAFKA_BOOTSTRAP": bootstrap})
    app = App(
        "bench-passthrough",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(home / "passthrough"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        value_serializer="raw",
        key_serializer="raw",
    )
    app.fetch_wait_ms = settings.fetch_wait_ms  # as create_app
    raw = app.topic(TOPIC_RAW, value_serializer="raw", key_serializer="raw")
    seen = {"count": 0, "first": 0.0}

    @app.agent(raw, concurrency=1)
    async def passthrough(stream: Any) -> None:
        async for _event in stream.events():
            seen["count"] += 1
            if seen["count"] == 1:
                seen["first"] = time.time()
            if seen["count"] == expected:
                out.write_bytes(
                    orjson.dumps({"count": expected, "first": seen["first"], "last": time.time()})
                )

    quiet_worker(app, "WARNING").execute_from_commandline()


def run_passthrough(bootstrap: str, expected: int, home: Path, timeout_s: float = 300.0) -> float:
    out = home / "passthrough.json"
    log = (home / "passthrough.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, __file__, "--passthrough-worker", bootstrap, str(expected), str(out), str(home)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not out.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"passthrough worker failed or timed out; see {home / 'passthrough.log'}")
            time.sleep(0.1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    result = orjson.loads(out.read_bytes())
    return (result["count"] - 1) / (result["last"] - result["first"])


# --- live and latency --------------------------------------------------------------------------


def done_of(status: dict[str, Any]) -> int:
    counters = status.get("counters", {})
    return int(counters.get("events", 0)) + int(counters.get("resolve_rejected", 0))


def measure_live(
    stacks: list[Stack],
    expected: int,
    timeout_s: float = 600.0,
    after: int = 0,
    window_s: float | None = None,
) -> float:
    """Steady-state raw events/s of the workers of ``stacks`` together, between the first status
    write with scored events and the one that reached ``expected``; then waits until drained.

    ``after`` and ``window_s`` (bench/scale.py, where draining everything would take an hour):
    the first write counted is the first past ``after`` events, and the rate is taken over at
    most ``window_s`` seconds from it; a window that ended before ``expected`` does not drain."""
    first: tuple[int, float] | None = None
    last: tuple[int, float] | None = None
    windowed = False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for stack in stacks:
            stack.check_workers()
        statuses = [read_status(stack.settings.status_file) or {} for stack in stacks]
        done = sum(done_of(status) for status in statuses)
        if done > after and (last is None or done != last[0]):
            last = (done, max(float(status.get("updated", 0.0)) for status in statuses))
            first = first or last
        windowed = bool(window_s and first and last and last[1] - first[1] >= window_s)
        if done >= expected or windowed:
            break
        time.sleep(0.02)
    if first is None or last is None or (last[0] < expected and not windowed) or last[1] <= first[1]:
        raise SystemExit(f"live run did not finish ({last}); see {stacks[0].worker_log(0)}")
    for stack in [] if windowed else stacks:  # all counted: nothing lags or waits in a worker
        stack.wait_drained(0)
    return (last[0] - first[0]) / (last[1] - first[1])


def measure_group(
    settings: Settings, events: list[SourceRecord], workers: int, timeout_s: float = 600.0
) -> float:
    """Events/s of one consumer group of ``workers`` worker processes on a fresh embedded broker
    (the same events produced first). Each worker has its own home and chDB folder, since one
    process may hold a folder (against a ClickHouse server they would share one)."""
    homes = [settings.home / f"group-{index}" for index in range(workers)]
    with ExitStack() as running:
        stacks: list[Stack] = []
        for home in homes:
            bootstrap = stacks[0].bootstrap if stacks else None
            wanted = replace(
                settings, home=home, warehouse_url=f"chdb://{home / 'warehouse'}", kafka_bootstrap=bootstrap
            )
            stacks.append(running.enter_context(Stack(wanted)))
        with EventProducer(stacks[0].bootstrap, Resolver(settings.seller_domains)) as producer:
            producer.send_all(events)
            producer.flush()
        expected = sum(n for topic, n in producer.sent.items() if topic != TOPIC_DEADLETTER)
        for stack in stacks:
            stack.start_workers()
        return measure_live(stacks, expected, timeout_s)


def produce_at_rate(
    producer: EventProducer, items: list[SourceRecord], rate: float
) -> tuple[dict[str, float], float]:
    """Send ``items`` at ``rate`` per second; the wall time of each send by event id, achieved rate."""
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for index, item in enumerate(items):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[item.envelope.event_id] = time.time()
        producer.send(item)
    producer.flush()
    return sent, len(items) / (time.perf_counter() - started)


def latencies(settings: Settings, sent: dict[str, float]) -> list[tuple[float, float]]:
    """(send time, seconds to ``ingested_at``) of every sent event that became an interaction."""
    client = connect(settings.warehouse_url)
    try:
        rows = client.query(
            "SELECT source_event_id, toFloat64(min(ingested_at)) FROM rapport.interactions "
            "WHERE source_event_id IN {ids:Array(String)} GROUP BY source_event_id",
            parameters={"ids": list(sent)},
        ).result_rows
    finally:
        client.close()
    return sorted((sent[event_id], at - sent[event_id]) for event_id, at in rows)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# --- state -------------------------------------------------------------------------------------


def state_size(state_dir: Path) -> dict[str, int]:
    """Bytes of the account states as stored in the worker's RocksDB table (compressed) and as
    JSON, and what they track."""
    from rocksdict import AccessType, Options, Rdict

    total = plain = accounts = contacts = 0
    for path in sorted(state_dir.rglob("account-state-*.db")):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                assert isinstance(key, bytes) and isinstance(value, bytes)  # raw_mode
                if key.startswith(b"__faust"):  # faust's own bookkeeping (the changelog offset)
                    continue
                state = unpack(value)
                total += len(key) + len(value)
                plain += len(key) + len(orjson.dumps(state))
                accounts += 1
                buyers = AccountState.from_dict(state).buyers  # any stored layout
                contacts += len(buyers.last_in.keys() | buyers.last_out.keys())
        finally:
            db.close()
    return {
        "state_bytes": total,
        "state_json_bytes": plain,
        "state_accounts": accounts,
        "active_contacts": contacts,
    }


# --- replay ------------------------------------------------------------------------------------


def run_replay(accounts: int) -> dict[str, Any]:
    """``bench/replay.py``'s figures: replay, its I/O floor and their ratio."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "replay.py"), "--accounts", str(accounts), "--json"],
        capture_output=True,
        check=True,
        text=True,
    )
    return dict(orjson.loads(done.stdout))


# --- the broker's floor ------------------------------------------------------------------------


def broker_floor(bootstrap: str, expected: int, timeout_s: float = 300.0) -> float:
    """aiokafka alone (no faust, no group: every partition of ``raw`` assigned, from the start)
    draining ``expected`` messages; events/s from the first message to the last."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def drain() -> float:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(TOPIC_RAW) or set()
            tps = [TopicPartition(TOPIC_RAW, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            count, first = 0, 0.0
            deadline = time.monotonic() + timeout_s
            while count < expected:
                if time.monotonic() > deadline:
                    raise SystemExit(f"broker floor: {count:,} of {expected:,} messages in {timeout_s:.0f}s")
                batches = await consumer.getmany(timeout_ms=500)
                if batches and not first:
                    first = time.time()
                count += sum(len(messages) for messages in batches.values())
            return (count - 1) / (time.time() - first)
        finally:
            await consumer.stop()

    return asyncio.run(drain())


# --- the run -----------------------------------------------------------------------------------


def following(events: list[SourceRecord], accounts: int, wanted: int) -> list[SourceRecord]:
    """The first ``wanted`` events (by event time) of a second dataset of the same ``accounts``
    (seed 8) starting the day after ``events`` end: the mix of work the live rate was measured on.

    A dataset of fewer accounts (the third of them ``wanted`` needed, as before) ran its whole year
    in the 15 s, so every event closed three times the account-days a live-phase event closes
    (silent accounts close days too): at "half the live rate" the worker was at 90 % of its main
    thread (py-spy, 1,196 samples; day closes 15 %) and a queue built up (p50 2.8 s → 5.2 s)."""
    last = datetime.fromisoformat(max(item.envelope.occurred_at for item in events))
    start = (last + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return records(generate(accounts, seed=LATENCY_SEED, start=start)[0])[:wanted]


def run(
    accounts: int,
    rate: float | None,
    latency_seconds: float,
    home: Path,
    overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One run; ``rate`` None: the latency phase at half the live rate just measured;
    ``overrides``: ``RAPPORT_*`` settings for the workers instead of the defaults (experiments)."""
    env = {**(overrides or {}), "RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN}
    settings = Settings.from_env(env)
    resolver = Resolver(settings.seller_domains)
    events = records(generate(accounts, seed=SEED)[0])
    figures: dict[str, Any] = {"events": len(events), "accounts": accounts}

    with Stack(settings) as stack:
        settings = replace(settings, kafka_bootstrap=stack.bootstrap)
        with EventProducer(stack.bootstrap, resolver) as producer:
            started = time.perf_counter()
            producer.send_all(events)
            producer.flush()
            figures["produce_events_per_s"] = round(len(events) / (time.perf_counter() - started))
        valid = sum(n for topic, n in producer.sent.items() if topic != TOPIC_DEADLETTER)

        figures["broker_floor_events_per_s"] = round(broker_floor(stack.bootstrap, valid))
        figures["passthrough_events_per_s"] = round(run_passthrough(stack.bootstrap, valid, home))

        stack.start_workers()
        figures["live_events_per_s"] = round(measure_live([stack], valid))

        rate = rate or figures["live_events_per_s"] / 2
        extra = following(events, accounts, int(rate * latency_seconds))
        with EventProducer(stack.bootstrap, resolver) as producer:
            sent, achieved = produce_at_rate(producer, extra, rate)
        figures["latency_rate_events_per_s"] = round(achieved)
        stack.wait_drained(valid + sum(n for t, n in producer.sent.items() if t != TOPIC_DEADLETTER))
        stack.stop_workers()

    timeline = latencies(settings, sent)
    measured = sorted(latency for _, latency in timeline)
    figures["latency_events"] = len(measured)
    # Whether latency grows while sending (a queue building up: the worker is slower than the rate)
    fifth = max(1, len(timeline) // 5)
    figures["latency_p50_first_fifth_s"] = round(statistics.median(x for _, x in timeline[:fifth]), 3)
    figures["latency_p50_last_fifth_s"] = round(statistics.median(x for _, x in timeline[-fifth:]), 3)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        figures[f"latency_{name}_s"] = round(percentile(measured, q), 3)
    figures["latency_mean_s"] = round(statistics.fmean(measured), 3)

    state = state_size(settings.state_dir)
    figures.update(state)
    contacts = max(1, state["active_contacts"])
    figures["state_bytes_per_contact"] = round(state["state_bytes"] / contacts)
    figures["state_json_bytes_per_contact"] = round(state["state_json_bytes"] / contacts)

    figures["group_workers"] = GROUP_WORKERS
    figures["group_live_events_per_s"] = round(
        measure_group(replace(settings, kafka_bootstrap=None, home=home / "group"), events, GROUP_WORKERS)
    )

    replayed = run_replay(accounts)
    figures["replay_events_per_s"] = replayed["replay_events_per_s"]
    figures["replay_floor_events_per_s"] = replayed["floor_events_per_s"]
    figures["replay_to_floor"] = replayed["replay_to_floor"]
    # the pure core (resolve + the scoring loop over in-memory ports, one process): a ceiling
    # for one live worker, which does that work and faust's consume on top, on one thread
    figures["core_events_per_s"] = replayed["core_events_per_s"]
    live, passthrough = figures["live_events_per_s"], figures["passthrough_events_per_s"]
    figures["core_to_passthrough"] = round(figures["core_events_per_s"] / passthrough, 2)
    figures["live_to_passthrough"] = round(live / passthrough, 2)
    figures["live_to_broker_floor"] = round(live / figures["broker_floor_events_per_s"], 2)
    figures["replay_to_live"] = round(figures["replay_events_per_s"] / live, 2)
    figures["group_speedup"] = round(figures["group_live_events_per_s"] / live, 2)
    return figures


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--passthrough-worker":
        bootstrap, expected, out, home = sys.argv[2:]
        sys.argv = sys.argv[:1]  # faust's worker reads the command line
        passthrough_worker(bootstrap, int(expected), Path(out), Path(home))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100, help="dataset size (100 → about 43,000 events)")
    parser.add_argument(
        "--rate", type=float, help="events/s of the latency phase (default: half the live rate measured)"
    )
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument(
        "--json", action="store_true", help="the figures as one JSON object on stdout (the table: stderr)"
    )
    parser.add_argument("--no-record", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="RAPPORT_NAME=VALUE",
        help="a worker setting instead of its default, e.g. RAPPORT_SINK_BATCH_SECONDS=0.35 "
        "(repeatable; recorded with the run)",
    )
    args = parser.parse_args()
    # the settings a worker takes, less the two the bench sets itself
    known = set(Settings.from_env({}).as_env()) - {"RAPPORT_HOME", "RAPPORT_SELLER_DOMAINS"}
    overrides = dict(setting.partition("=")[::2] for setting in args.setting)
    if wrong := [s for s in args.setting if "=" not in s or s.partition("=")[0] not in known]:
        parser.error(f"--setting takes NAME=VALUE with NAME one of {', '.join(sorted(known))}; not {wrong}")

    at = datetime.now(UTC)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        figures = run(args.accounts, args.rate, args.latency_seconds, Path(tmp), overrides)
    table = sys.stderr if args.json else sys.stdout  # --json: stdout is the JSON object alone
    for name, value in figures.items():
        print(f"{name:>28}: {value:,}", file=table)
    print(f"{'machine':>28}: {before}", file=table)
    if not args.no_record:
        path = record("pipeline", at, vars(args), figures, before)
        print(f"{'recorded':>28}: {path.relative_to(BENCH.parent)}", file=table)
    if args.json:
        print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
