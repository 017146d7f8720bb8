"""CRM change-data-capture JSON: updates fold onto known records, the rest is rejected with a reason.

The fixtures under ``fixtures/crm-changes`` are hand-written (not real data): ``salesforce.json``
in Salesforce's Change Data Capture shape (some events wrapped as Streaming API messages, listed
out of commit order), ``flat.jsonl`` in the documented flat form with one broken line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.runtime.replay import replay
from streams.sinks.warehouse import connect
from streams.sources.crm_changes import parse_changes
from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.reader import Tally, read_sources
from tests.sources.strategies import json_documents

FIXTURES = Path(__file__).parent / "fixtures" / "crm-changes"


def parsed(*names: str) -> tuple[dict[str, dict[str, Any]], list[Rejection]]:
    items = list(parse_changes((FIXTURES.joinpath(n).read_bytes(), n) for n in names))
    records = {i.envelope.event_id: i.envelope.payload for i in items if isinstance(i, SourceRecord)}
    return records, [i for i in items if isinstance(i, Rejection)]


def test_salesforce_updates_merge_onto_the_record_in_commit_order() -> None:
    records, rejections = parsed("salesforce.json")
    account = records["account:001A0000001:2026-01-02T08:00:00.000Z"]
    assert account["account_id"] == "crm:001A0000001"
    assert (account["domains"], account["owner"]) == (["acme.com"], "ann@seller.com")  # OwnerId → User
    negotiation = records["opportunity:006A0000001:2026-02-10T09:00:00.000Z"]
    assert negotiation["stage"] == "Negotiation/Review" and negotiation["next_step"] == "Send the order form"
    # fields the update did not change (sent as null) keep their earlier values
    assert (negotiation["amount"], negotiation["close_date"]) == (12000.0, "2026-06-30")
    assert negotiation["account_id"] == "crm:001A0000001" and negotiation["status"] == "open"
    won = records["opportunity:006A0000001:2026-03-04T09:00:00.000Z"]
    assert (won["status"], won["next_step"]) == ("won", "Send the order form")
    title = records["contact:003A0000001:2026-01-20T08:00:00.000Z"]
    assert (title["title"], title["email"], title["name"]) == (
        "Chief Advisor",
        "pat.consults@gmail.com",
        "Pat Moss",
    )
    assert title["active"] is True
    deleted = records["contact:003A0000001:2026-03-02T09:00:00.000Z"]
    assert deleted["active"] is False and deleted["title"] == "Chief Advisor"
    call = records["activity:00TA0000001:2026-02-03T15:00:00.000Z"]
    assert call == {
        "activity_id": "00TA0000001",
        "account_id": "crm:001A0000001",
        "owner": "ann@seller.com",
        "type": "call",
        "contact_emails": ["pat.consults@gmail.com"],
        "at": "2026-02-03T00:00:00.000Z",
    }
    assert records["seller:005A0000001:2026-01-01T08:00:00.000Z"]["name"] == "Ann Lee"
    reasons = {r.reason.split(":")[0]: r.reason for r in rejections}
    assert set(reasons) == {
        "UPDATE of Opportunity 006B0000009",
        "DELETE of Account 001A0000001",
        "GAP_UPDATE of Account 001A0000002",
    }
    assert "no earlier CREATE" in reasons["UPDATE of Opportunity 006B0000009"]
    assert "not applied" in reasons["DELETE of Account 001A0000001"]
    assert "re-read the record" in reasons["GAP_UPDATE of Account 001A0000002"]
    assert all(b"never read" not in r.raw for r in rejections)
    assert not any("never read" in orjson.dumps(p).decode() for p in records.values())


def test_flat_form_and_json_lines() -> None:
    records, rejections = parsed("flat.jsonl")
    lee = records["contact:lee:2026-02-06T00:00:00.000Z"]
    assert (lee["account_id"], lee["email"], lee["title"], lee["name"]) == (
        "crm:acme-labs",
        "lee@acme-labs.io",
        "CTO",
        "Lee Park",
    )
    assert records["account:acme-labs:2026-01-05T00:00:00.000Z"]["domains"] == ["acme-labs.io"]
    reasons = sorted(r.reason for r in rejections)
    assert len(reasons) == 3
    assert "no account known" in reasons[0] and reasons[0].startswith("CREATE of opportunity labs-1")
    assert reasons[1].startswith("UPDATE of contact kim") and "no earlier CREATE" in reasons[1]
    assert reasons[2].startswith("not valid JSON")


def test_feed_folders_are_read_as_crm_and_add_up(tmp_path: Path) -> None:
    for kind in ("crm", None):  # `ingest crm`, and replay's guess from the file contents
        tally = Tally()
        resolver = Resolver(["seller.com"])
        for item in read_sources([FIXTURES], kind=kind):
            tally.note(item, resolver)
        summary = tally.as_dict()
        assert summary["read"] == 19 and summary["rejected"] == 6
        assert summary["accepted"] + summary["duplicates"] + summary["automated"] + summary["rejected"] == 19

    settings_ = Settings.from_env({"RAPPORT_HOME": str(tmp_path), "RAPPORT_SELLER_DOMAINS": "seller.com"})
    client = connect(settings_.warehouse_url)
    try:
        replay(read_sources([FIXTURES]), settings_, client=client)

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return client.query(sql).result_rows

        assert rows("SELECT account_id FROM rapport.accounts FINAL ORDER BY 1") == [
            ("crm:001A0000001",),
            ("crm:acme-labs",),
        ]
        assert rows("SELECT email, title, active FROM rapport.contacts FINAL ORDER BY 1") == [
            ("lee@acme-labs.io", "CTO", 1),
            ("pat.consults@gmail.com", "Chief Advisor", 0),
        ]
        assert rows("SELECT stage, status FROM rapport.opportunities FINAL") == [("Closed Won", "won")]
        assert rows("SELECT count() FROM rapport.rejected_events FINAL") == [(6,)]
    finally:
        client.close()


def test_an_update_in_one_file_merges_onto_a_create_in_another(tmp_path: Path) -> None:
    later = {
        "entity": "Contact",
        "change_type": "UPDATE",
        "record_ids": ["lee"],
        "changed_fields": ["Title"],
        "commit_timestamp": "2026-03-01T00:00:00Z",
        "fields": {"Title": "CEO"},
    }
    (tmp_path / "later.json").write_bytes(orjson.dumps([later]))
    items = list(read_sources([tmp_path / "later.json", FIXTURES / "flat.jsonl"], kind="crm"))
    latest = [
        i for i in items if isinstance(i, SourceRecord) and i.envelope.event_id.startswith("contact:lee:")
    ]
    assert latest[-1].envelope.payload["title"] == "CEO"
    assert latest[-1].envelope.payload["email"] == "lee@acme-labs.io"
    assert sum(isinstance(i, Rejection) for i in items) == 3  # flat.jsonl's own three


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["fuzz.json", "fuzz.jsonl"]))
def test_arbitrary_bytes_never_raise(data: bytes, origin: str) -> None:
    assert all(isinstance(r, SourceRecord | Rejection) for r in parse_changes([(data, origin)]))


HEADER_KEYS = ["entityName", "changeType", "recordIds", "changedFields", "nulledFields", "commitTimestamp"]
FIELD_KEYS = [
    "Name",
    "FirstName",
    "Email",
    "AccountId",
    "OwnerId",
    "StageName",
    "Amount",
    "CloseDate",
    "IsClosed",
]
FLAT_KEYS = ["entity", "change_type", "record_ids", "changed_fields", "commit_timestamp", "fields"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "ChangeEventHeader": st.fixed_dictionaries(
                    {}, optional=dict.fromkeys(HEADER_KEYS, json_documents(HEADER_KEYS))
                )
            },
            optional=dict.fromkeys(FIELD_KEYS, json_documents(FIELD_KEYS)),
        )
        | json_documents(FLAT_KEYS + FIELD_KEYS),
        max_size=6,
    )
)
def test_mutated_change_events_never_raise(events: list[Any]) -> None:
    raw = json.dumps(events).encode()  # the standard library also writes integers beyond 64 bits
    assert all(isinstance(r, SourceRecord | Rejection) for r in parse_changes([(raw, "fuzz.json")]))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_fixture_events_never_raise(data: st.DataObject) -> None:
    events = orjson.loads((FIXTURES / "salesforce.json").read_bytes())
    event = data.draw(st.sampled_from(events))
    holder = event.get("data", {}).get("payload", event)
    target = data.draw(st.sampled_from([holder, holder["ChangeEventHeader"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(json_documents(HEADER_KEYS + FIELD_KEYS))
    results = list(parse_changes([(json.dumps(events).encode(), "mutated.json")]))
    assert all(isinstance(r, SourceRecord | Rejection) for r in results) and len(results) >= 12


def test_reasons_quote_no_input_values() -> None:
    """An unreadable date, commit timestamp or entity is named by its field, never quoted: the
    reason reaches `ingest --json` and the dead-letter board."""
    secret = "PRIVATE-Pat-Moss-home"
    lines = [
        {"entity": "account", "change_type": "create", "record_ids": ["a"], "changed_fields": [],
         "commit_timestamp": secret, "fields": {"name": "Acme"}},
        {"entity": secret, "change_type": "create", "record_ids": ["b"], "changed_fields": [],
         "commit_timestamp": "2026-01-05T00:00:00Z", "fields": {}},
        {"entity": "opportunity", "change_type": "create", "record_ids": ["o"], "changed_fields": [],
         "commit_timestamp": "2026-01-05T00:00:00Z",
         "fields": {"account_id": "a", "stage": "Won", "close_date": secret}},
    ]  # fmt: skip
    data = b"\n".join(orjson.dumps(line) for line in lines)
    items = list(parse_changes([(data, "feed.jsonl")]))
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert len(rejections) == 3
    assert all(secret not in r.reason for r in rejections), [r.reason for r in rejections]
