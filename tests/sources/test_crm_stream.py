"""The CRM change-stream connector on the embedded broker: Debezium events (with and without the
schema wrapper) and Salesforce CDC events update accounts and contacts; a restart resumes from
its checkpoint; an unmapped table is a rejection with the reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from streams.config import Settings
from streams.runtime.broker import EmbeddedBroker, ensure_topics
from streams.sources.connector import ConnectorStatus, run_connector
from streams.sources.crm_stream import CrmStreamConnector, crm_stream_settings, debezium_change, load_mapping
from streams.sources.dataset import Rejection, SourceRecord
from tests.sources.test_caldav import Collected

pytestmark = pytest.mark.broker
REPO = Path(__file__).parents[2]
MAPPING = REPO / "docs" / "examples" / "crm-mapping.toml"
TOPICS = ("crm.public.companies", "crm.public.people", "salesforce.cdc")
COMMIT = 1_780_000_000_000  # 2026-05-28, epoch ms


def debezium(table: str, op: str, before: dict | None, after: dict | None, ts: int, wrapped: bool) -> bytes:
    event = {
        "before": before,
        "after": after,
        "op": op,
        "ts_ms": ts + 5,
        "source": {"connector": "postgresql", "db": "crm", "schema": "public", "table": table, "ts_ms": ts},
    }
    if wrapped:  # JsonConverter with schemas.enable=true
        return orjson.dumps(
            {"schema": {"type": "struct", "name": f"crm.public.{table}.Envelope"}, "payload": event}
        )
    return orjson.dumps(event)


COMPANY = {
    "id": 7,
    "name": "Globex",
    "domain": "globex.example",
    "owner_email": "ann@demo-seller.com",
    "industry": "Energy",
    "notes": "never read",
}
PERSON = {
    "id": 70,
    "company_id": 7,
    "email": "hank@globex.example",
    "first_name": "Hank",
    "last_name": "Scorpio",
    "job_title": "CEO",
}
SALESFORCE = {
    "ChangeEventHeader": {
        "entityName": "Contact",
        "changeType": "CREATE",
        "recordIds": ["003SF1"],
        "changedFields": [],
        "commitTimestamp": COMMIT + 9000,
    },
    "AccountId": "7",
    "Email": "marge@globex.example",
    "FirstName": "Marge",
    "LastName": "S",
    "Title": "VP Sales",
}


@pytest.fixture
def broker(settings: Settings) -> Iterator[str]:
    with EmbeddedBroker(settings) as embedded:
        ensure_topics(embedded.bootstrap, 2, TOPICS)
        yield embedded.bootstrap


def produce(bootstrap: str, messages: list[tuple[str, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for topic, value in messages:
        producer.send(topic, value=value, key=b"k")
    producer.flush()
    producer.close()


def run_until(connector: CrmStreamConnector, output: Collected, settings: Settings, count: int) -> None:
    stop = threading.Event()
    status = ConnectorStatus(settings.home, connector.name, connector.kind)
    thread = threading.Thread(target=run_connector, args=(connector, output, status, stop))
    thread.start()
    try:
        output.wait_for(count)
    finally:
        stop.set()
        thread.join(20)


def connector(settings: Settings, bootstrap: str) -> CrmStreamConnector:
    config = {
        "kind": "crm-stream",
        "name": "crm",
        "topics": list(TOPICS),
        "mapping": str(MAPPING),
        "poll_seconds": 0.2,
    }
    return CrmStreamConnector("crm", crm_stream_settings(config, bootstrap), settings.home)


def test_debezium_and_salesforce_changes_update_accounts_and_contacts(
    settings: Settings, broker: str
) -> None:
    renamed = {**COMPANY, "name": "Globex Corporation"}
    produce(
        broker,
        [
            ("crm.public.companies", debezium("companies", "r", None, COMPANY, COMMIT, wrapped=True)),
            ("crm.public.people", debezium("people", "c", None, PERSON, COMMIT + 1000, wrapped=False)),
            (
                "crm.public.companies",
                debezium("companies", "u", COMPANY, renamed, COMMIT + 2000, wrapped=False),
            ),
            ("salesforce.cdc", orjson.dumps(SALESFORCE)),
            ("crm.public.people", debezium("orders", "c", None, {"id": 1}, COMMIT, wrapped=False)),
        ],
    )
    output = Collected()
    run_until(connector(settings, broker), output, settings, 4)
    records = [i.envelope for i in output.items if isinstance(i, SourceRecord)]
    accounts = [r.payload for r in records if r.schema == "crm_account/1"]
    contacts = {r.payload["email"]: r.payload for r in records if r.schema == "crm_contact/1"}
    assert [a["name"] for a in accounts] == ["Globex", "Globex Corporation"]
    assert accounts[-1]["domains"] == ["globex.example"] and accounts[-1]["account_id"] == "crm:7"
    assert contacts["hank@globex.example"]["name"] == "Hank Scorpio"
    assert contacts["hank@globex.example"]["title"] == "CEO" and contacts["hank@globex.example"]["active"]
    assert contacts["marge@globex.example"]["account_id"] == "crm:7"  # Salesforce CDC shape
    rejected = [i for i in output.items if isinstance(i, Rejection)]
    assert len(rejected) == 1 and "'public.orders' has no mapping" in rejected[0].reason
    assert b"never read" not in b"".join(i.raw for i in output.items)

    # Restart: only what came after the checkpoint; the delete finds the contact in the stored fold.
    produce(
        broker,
        [
            ("crm.public.people", debezium("people", "d", PERSON, None, COMMIT + 5000, wrapped=True)),
            ("crm.public.people", None),
        ],
    )  # Debezium's tombstone
    again = Collected()
    run_until(connector(settings, broker), again, settings, 1)
    assert [i.envelope.payload["active"] for i in again.items if isinstance(i, SourceRecord)] == [False]
    assert len(again.items) == 1
    status = orjson.loads((settings.home / "connectors" / "crm.json").read_bytes())
    assert status["lag"] == 0 and status["kind"] == "crm-stream"


def test_mapping_errors_name_the_section(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[deals]\ntable = "x"\nid = "id"\n')
    with pytest.raises(Exception, match=r"\[deals\] is not one of"):
        load_mapping(bad)
    bad.write_text('[accounts]\ntable = "x"\nid = "id"\n[accounts.fields]\ncolour = "c"\n')
    with pytest.raises(Exception, match="unknown field"):
        load_mapping(bad)
    assert debezium_change({"not": "debezium"}, {}) is None
