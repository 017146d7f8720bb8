"""Property tests of what the connectors and the notifier parse from the wire: hostile Debezium
events and alert messages give a record or a clear error, never a crash; CalDAV versions of a
meeting only ever go up, whatever the server does to SEQUENCE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import ContractError
from streams.sinks.notify import decode_alert
from streams.sources.caldav_feed import CalDavConnector, CalDavSettings
from streams.sources.crm_changes import Fold, read_change
from streams.sources.crm_stream import debezium_change, load_mapping
from streams.sources.dataset import Rejection, SourceRecord
from tests.sources.strategies import json_documents

MAPPING = load_mapping(Path(__file__).parents[2] / "docs" / "examples" / "crm-mapping.toml")
DEBEZIUM_KEYS = ["schema", "payload", "before", "after", "op", "source", "ts_ms", "table", "id", "name",
                 "company_id", "email", "domain", "c", "u", "d", "r", "companies", "people"]  # fmt: skip
ALERT_KEYS = ["schema", "payload", "alert_id", "account_id", "kind", "severity", "reason", "status",
              "version", "explanation", "owner", "ended_at", "raised_at"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(json_documents(DEBEZIUM_KEYS))
def test_debezium_events_become_a_change_or_a_clear_error(event: object) -> None:
    if not isinstance(event, dict):
        return
    try:
        flat = debezium_change(event, MAPPING)
        if flat is not None:
            change = read_change(flat, "prop")
            for record_id in change.record_ids:
                assert isinstance(Fold({}).apply(change, record_id), SourceRecord | Rejection)
    except ContractError as exc:
        assert str(exc)


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "id": st.integers(1, 10**9),
            "name": st.text(min_size=1, max_size=40),
            "domain": st.text(max_size=40),
        }
    ),
    st.booleans(),
)
def test_a_mapped_debezium_row_keeps_its_id_and_name(row: dict, wrapped: bool) -> None:
    event = {"before": None, "after": row, "op": "c",
             "source": {"schema": "public", "table": "companies", "ts_ms": 1_780_000_000_000}}  # fmt: skip
    value = {"schema": {}, "payload": event} if wrapped else event
    flat = debezium_change(value, MAPPING)
    assert flat is not None and flat["record_ids"] == [str(row["id"])] and flat["entity"] == "Account"
    result = Fold({}).apply(read_change(flat, "prop"), str(row["id"]))
    if isinstance(result, SourceRecord):
        assert result.envelope.payload["account_id"] == f"crm:{row['id']}"
    else:
        assert "name" in result.reason  # a blank name is the one thing an account row cannot lack


@settings(max_examples=300, deadline=None)
@given(json_documents(ALERT_KEYS))
def test_alert_messages_decode_or_say_why(document: object) -> None:
    try:
        alert = decode_alert(orjson.dumps(document))
    except (ValueError, TypeError) as exc:
        assert str(exc)
    else:
        assert alert.alert_id and alert.status in ("raised", "resolved") and alert.version >= 0


class Kept:
    def __init__(self) -> None:
        self.items: list[SourceRecord | Rejection] = []

    def send(self, item: SourceRecord | Rejection) -> None:
        self.items.append(item)

    def flush(self) -> None:
        pass


def meeting(sequence: int, hour: int, status: str) -> bytes:
    start = datetime(2026, 12, 10, 9, tzinfo=UTC) + timedelta(hours=hour)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:prop-1\r\n"
        f"DTSTAMP:20261201T000000Z\r\nSEQUENCE:{sequence}\r\nSTATUS:{status}\r\n"
        f"DTSTART:{start.strftime('%Y%m%dT%H%M%SZ')}\r\nDURATION:PT30M\r\n"
        "ORGANIZER:mailto:ann@demo-seller.com\r\nATTENDEE:mailto:bo@buyer.example\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from(["CONFIRMED", "CANCELLED"])),
        min_size=1,
        max_size=8,
    )
)
def test_meeting_versions_only_go_up_and_changes_are_never_dropped(saves: list[tuple[int, int, str]]) -> None:
    connector = CalDavConnector("prop", CalDavSettings(url="http://127.0.0.1:1/"), Path("/nonexistent"))
    objects: dict = {}
    output = Kept()
    sent_states = []
    for sequence, hour, status in saves:
        connector._update("http://127.0.0.1:1/cal/prop.ics", meeting(sequence, hour, status), objects, output)
        state = (hour, status)
        if not sent_states or sent_states[-1] != state:
            sent_states.append(state)
    records = [i.envelope.payload for i in output.items if isinstance(i, SourceRecord)]
    versions = [r["sequence"] for r in records]
    assert versions == sorted(set(versions))  # strictly increasing: never a repeat the pipeline drops
    # every change of time or status was sent (a raised SEQUENCE may also send an unchanged event)
    changes = [(int(r["start"][11:13]) - 9, r["status"]) for r in records]
    assert [s for i, s in enumerate(changes) if i == 0 or changes[i - 1] != s] == sent_states
