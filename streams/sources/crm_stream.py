"""CRM change streams from Kafka → ``crm_*/1`` records, as users' Kafka Connect pipelines produce
them.

Two shapes per message value (JSON; tombstones are skipped):

* **Debezium** change events from a CRM database, with or without the converter's ``schema`` /
  ``payload`` wrapper: ``before``, ``after``, ``op`` (``c`` create, ``r`` snapshot read, ``u``
  update, ``d`` delete), ``source.ts_ms`` (commit time) and ``source.table``. A mapping file
  (TOML, below) says which table is which Rapport entity and which column is which field.
* **Salesforce Change Data Capture** events (a ``ChangeEventHeader``), as the file reader takes
  them; Salesforce names need no mapping.

Both become the change events of :mod:`streams.sources.crm_changes` and go through its
:class:`~streams.sources.crm_changes.Fold`, so files and streams give the same rows. Debezium's
``after`` is the whole row, so creates, snapshot reads and updates all replace the record (an
update of a row created before the connector started is complete); a delete makes a contact
inactive and is refused, with the reason, for the other entities (as for files).

Mapping file (``docs/connectors.md`` has a full example)::

    [accounts]
    table = "public.companies"      # source.schema.table, or just the table name
    id = "id"                       # the primary-key column
    [accounts.fields]               # Rapport field = column
    name = "name"
    website = "domain"
    owner = "owner_email"

Entities: ``accounts``, ``contacts``, ``opportunities``, ``activities``, ``sellers``; fields as in
``streams.sources.crm_changes.FIELDS`` (Rapport names: ``account``, ``email``, ``first_name``,
``last_name``, ``title``, ``stage``, ``amount``, ``owner``, ``close_date``, ``created_at``,
``next_step``, ``type``, ``at``, ``contact_emails``, ``website``/``domains``, ``industry``,
``team``, ``manager``, ``active``). Columns not named are never read.

Offsets are assigned per partition (no consumer group) and checkpointed with the fold state under
``RAPPORT_HOME`` after the produced records are flushed.
"""

from __future__ import annotations

import asyncio
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.contracts import ContractError
from streams.sources.connector import Checkpoint, ConnectorError, ConnectorStatus, Output
from streams.sources.crm_changes import FIELDS, Fold, read_change
from streams.sources.dataset import Rejection

ENTITIES = {  # mapping section -> the entity name the change reader knows
    "accounts": "Account",
    "contacts": "Contact",
    "opportunities": "Opportunity",
    "activities": "Activity",
    "sellers": "User",
}
OPS = {"c": "CREATE", "r": "CREATE", "u": "CREATE", "d": "DELETE"}
# Rapport field -> a source name the change reader maps to it (FIELDS is source name -> field)
_SOURCE_NAME = {rapport: source for source, rapport in FIELDS.items()}
POLL_MS = 500


@dataclass(frozen=True)
class TableMapping:
    entity: str  # Account, Contact, …
    id_column: str
    fields: dict[str, str]  # Rapport field -> column


def load_mapping(path: Path | None) -> dict[str, TableMapping]:
    """The mapping file → mappings keyed by table name (with and without its schema)."""
    if path is None:
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConnectorError(f"CRM mapping {path}: {exc}") from None
    found: dict[str, TableMapping] = {}
    for section, table in document.items():
        if section not in ENTITIES or not isinstance(table, dict):
            raise ConnectorError(f"CRM mapping {path}: [{section}] is not one of {', '.join(ENTITIES)}")
        fields = table.get("fields") or {}
        unknown = sorted(f for f in fields if f not in _SOURCE_NAME)
        if not table.get("table") or not table.get("id") or unknown:
            raise ConnectorError(
                f"CRM mapping {path}: [{section}] needs table, id and known fields"
                + (f"; unknown field(s) {', '.join(unknown)}" if unknown else "")
            )
        found[str(table["table"]).lower()] = TableMapping(
            ENTITIES[section], str(table["id"]), {str(k): str(v) for k, v in fields.items()}
        )
    return found


def debezium_change(value: dict[str, Any], mapping: dict[str, TableMapping]) -> dict[str, Any] | None:
    """A Debezium envelope (either form) → the flat change event; ``None`` if it is not one."""
    event = value.get("payload") if isinstance(value.get("payload"), dict) and "schema" in value else value
    if not isinstance(event, dict) or "op" not in event or "source" not in event:
        return None
    source = event.get("source")
    if not isinstance(source, dict):
        raise ContractError("Debezium change without a source object (source.table, source.ts_ms)")
    table = str(source.get("table") or "").lower()
    qualified = f"{source.get('schema') or source.get('db') or ''}.{table}".lower()
    found = mapping.get(qualified) or mapping.get(table)
    if found is None:
        known = ", ".join(sorted(mapping)) or "none: pass a mapping file"
        raise ContractError(f"Debezium change of table {qualified!r} has no mapping (mapped: {known})")
    op = OPS.get(str(event.get("op")))
    if op is None:
        raise ContractError(f"Debezium op {event.get('op')!r} of {qualified}: not applied (c, r, u, d)")
    row = event.get("after") if op != "DELETE" else event.get("before")
    if not isinstance(row, dict) or row.get(found.id_column) is None:
        raise ContractError(f"Debezium {op} of {qualified} without the row's {found.id_column!r}")
    fields = {_SOURCE_NAME[f]: row.get(column) for f, column in found.fields.items() if column in row}
    return {
        "entity": found.entity,
        "change_type": op,
        "record_ids": [str(row[found.id_column])],
        "changed_fields": [],
        "commit_timestamp": source.get("ts_ms") or event.get("ts_ms"),
        "fields": fields,
    }


@dataclass
class CrmStreamSettings:
    bootstrap: str
    topics: tuple[str, ...]
    mapping: dict[str, TableMapping] = field(default_factory=dict)
    poll_seconds: float = 1.0


def _fold_state(fold: Fold) -> dict[str, Any]:
    return {f"{kind}:{record_id}": record for (kind, record_id), record in fold.records.items()}


def _fold(state: dict[str, Any]) -> Fold:
    records = {}
    for key, record in state.items():
        kind, _, record_id = key.partition(":")
        records[(kind, record_id)] = record
    return Fold(records)


class CrmStreamConnector:
    """Kafka topics of CRM change events; see the module docstring."""

    kind = "crm-stream"

    def __init__(self, name: str, settings: CrmStreamSettings, home: Path) -> None:
        self.name = name
        self.settings = settings
        self.checkpoint = Checkpoint(home, name)
        self.loop = asyncio.new_event_loop()
        self.consumer: Any = None

    async def _start(self, offsets: dict[str, int]) -> Any:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"rapport-{self.name}",
        )
        await consumer.start()
        try:
            partitions = []
            for topic in self.settings.topics:
                known = consumer.partitions_for_topic(topic) or await self._wait_for_topic(consumer, topic)
                partitions += [TopicPartition(topic, p) for p in sorted(known)]
            consumer.assign(partitions)
            for tp in partitions:
                start = offsets.get(f"{tp.topic}:{tp.partition}")
                if start is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, start)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    @staticmethod
    async def _wait_for_topic(consumer: Any, topic: str) -> set[int]:
        for _ in range(20):
            await consumer.force_metadata_update()
            found = consumer.partitions_for_topic(topic)
            if found:
                return set(found)
            await asyncio.sleep(0.5)
        raise ConnectorError(f"topic {topic!r} does not exist on {consumer._client._bootstrap_servers}")

    def sync(self, output: Output, status: ConnectorStatus) -> None:
        state = self.checkpoint.load()
        offsets: dict[str, int] = dict(state.get("offsets") or {})
        fold = _fold(state.get("fold") or {})
        if self.consumer is None:
            self.consumer = self.loop.run_until_complete(self._start(offsets))
        while True:
            batches = self.loop.run_until_complete(self.consumer.getmany(timeout_ms=POLL_MS))
            if not batches:
                break
            for tp, messages in sorted(batches.items(), key=lambda b: (b[0].topic, b[0].partition)):
                for message in messages:
                    self._apply(message, fold, output)
                    offsets[f"{tp.topic}:{tp.partition}"] = message.offset + 1
            output.flush()  # on the broker before the offsets move on
            self.checkpoint.save({"offsets": offsets, "fold": _fold_state(fold)})
        ends = self.loop.run_until_complete(self.consumer.end_offsets(list(self.consumer.assignment())))
        status.lag = sum(
            max(0, end - offsets.get(f"{tp.topic}:{tp.partition}", 0)) for tp, end in ends.items()
        )
        status.detail = {"bootstrap": self.settings.bootstrap, "topics": list(self.settings.topics)}

    def _apply(self, message: Any, fold: Fold, output: Output) -> None:
        origin = f"kafka://{message.topic}/{message.partition}@{message.offset}"
        if message.value is None:
            return  # a tombstone after a delete: the delete itself carried the change
        try:
            value = orjson.loads(message.value)
            if not isinstance(value, dict):
                raise ContractError("expected a JSON object per change event")
            event = debezium_change(value, self.settings.mapping) or value
            change = read_change(event, origin)
            if change.change_type == "DELETE" and change.kind == "contact":
                for record_id in change.record_ids:  # a row deleted that this connector never saw
                    fold.records.setdefault((change.kind, record_id), dict(change.fields))
        except (orjson.JSONDecodeError, ContractError, ValueError, TypeError, AttributeError) as exc:
            output.send(Rejection(origin, str(exc)[:500], b""))
            return
        for record_id in change.record_ids:
            output.send(fold.apply(change, record_id))

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.settings.poll_seconds)

    def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            self.loop.run_until_complete(consumer.stop())


def crm_stream_settings(config: dict[str, Any], bootstrap: str) -> CrmStreamSettings:
    """A connector table (docs/connectors.md) → settings; the pipeline's broker unless named."""
    known = {"kind", "name", "bootstrap", "topics", "topic", "mapping", "poll_seconds"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConnectorError(f"crm-stream connector: unknown setting(s) {', '.join(unknown)}")
    topics = config.get("topics") or ([config["topic"]] if config.get("topic") else [])
    if not topics:
        raise ConnectorError("crm-stream connector: name the topic(s) Kafka Connect writes (topics = [...])")
    mapping = Path(config["mapping"]).expanduser() if config.get("mapping") else None
    return CrmStreamSettings(
        bootstrap=str(config.get("bootstrap") or bootstrap),
        topics=tuple(str(t) for t in topics),
        mapping=load_mapping(mapping),
        poll_seconds=float(config.get("poll_seconds", 1.0)),
    )
