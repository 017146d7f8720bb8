from __future__ import annotations

from collections import Counter
from pathlib import Path

from streams.sources.dataset import Rejection, SourceRecord, read_dataset, read_labels, write_dataset
from streams.sources.synthetic import PERSONAS, generate


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, labels_a = generate(5, seed=3, days=30)
    b, labels_b = generate(5, seed=3, days=30)
    c, _ = generate(5, seed=4, days=30)
    assert [e.to_bytes() for e in a] == [e.to_bytes() for e in b]
    assert labels_a == labels_b
    assert [e.to_bytes() for e in a] != [e.to_bytes() for e in c]


def test_events_are_time_ordered_unique_and_cover_every_source() -> None:
    events, _labels = generate(12, seed=5)
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    assert len({e.event_id for e in events}) == len(events)
    kinds = Counter(e.schema for e in events)
    for schema in (
        "raw_email/1",
        "raw_meeting/1",
        "crm_account/1",
        "crm_contact/1",
        "crm_opportunity/1",
        "crm_activity/1",
    ):
        assert kinds[schema] > 0, schema
    assert len(events) >= 12 * 200  # a year of realistic traffic per account


def test_personas_are_planted_and_labelled() -> None:
    _, labels = generate(60, seed=9)
    personas = Counter(a["persona"] for a in labels["accounts"].values())
    assert set(personas) == {p for p, _ in PERSONAS}
    for account in labels["accounts"].values():
        if account["persona"] == "slowly_disengaging":
            assert account["disengage_start"] < account["disengage_complete"]
        if account["persona"] == "champion_leaves":
            assert "champion" in account and "champion_leaves_at" in account
    assert {s["prep"] for s in labels["sellers"].values()} == {"well_prepared", "poorly_prepared"}


def test_disengaging_buyers_really_go_quiet() -> None:
    events, labels = generate(40, seed=2)
    account, label = next(
        (k, v) for k, v in labels["accounts"].items() if v["persona"] == "slowly_disengaging"
    )
    inbound_before = inbound_after = 0
    for e in events:
        if e.schema == "raw_email/1" and e.payload["from"].endswith("@" + account):
            if e.payload.get("list_unsubscribe"):
                continue
            if e.occurred_at < label["disengage_start"]:
                inbound_before += 1
            elif e.occurred_at > label["disengage_complete"]:
                inbound_after += 1
    assert inbound_before > 5 * max(inbound_after, 1)


def test_dataset_roundtrip_and_bad_lines_become_rejections(tmp_path: Path) -> None:
    events, labels = generate(3, seed=1, days=20)
    write_dataset(tmp_path, events, labels)
    with (tmp_path / "email.jsonl").open("ab") as f:
        f.write(b'{"broken": true}\n\xff\xfe\n')
    items = list(read_dataset(tmp_path))
    records = [i for i in items if isinstance(i, SourceRecord)]
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert [r.envelope for r in records] == events
    assert len(rejections) == 2 and all("email.jsonl" in r.origin for r in rejections)
    assert read_labels(tmp_path) == labels


def test_dirt_is_opt_in_deterministic_and_leaves_the_clean_events_alone() -> None:
    clean, clean_labels = generate(4, seed=6, days=90)
    dirty, dirty_labels = generate(4, seed=6, days=90, dirty=True)
    again, _ = generate(4, seed=6, days=90, dirty=True)
    assert [e.to_bytes() for e in dirty] == [e.to_bytes() for e in again]
    clean_bytes = {e.to_bytes() for e in clean}
    assert clean_bytes < {e.to_bytes() for e in dirty}  # only added events
    assert "noise" not in clean_labels and clean_labels["accounts"] == dirty_labels["accounts"]


def test_the_audit_sees_through_the_dirt(tmp_path: Path) -> None:
    from streams.identity.audit import audit
    from streams.sources.reader import read_sources

    events, labels = generate(6, seed=4, days=180, dirty=True)
    write_dataset(tmp_path, events, labels)
    report = audit(read_sources([tmp_path]), labels["seller_domains"])
    accounts = {a["organisation"]: a for a in report["accounts"]}
    relationships = {o for o, a in accounts.items() if a["relationship"]}
    assert relationships == set(labels["relationships"])
    noise = labels["noise"]
    assert report["summary"]["duplicates_by"]["fingerprint"] == noise["folder_copies"]["count"] > 0
    assert [s["domain"] for s in report["summary"]["suggested_seller_domains"]] == ["demo-seller-energy.com"]
    for organisation, planted in noise.items():
        if planted.get("reason") in ("automated", "one-way inbound", "one-way outbound"):
            assert accounts[organisation]["reason"] == planted["reason"], organisation
    for never in ("aardvark-advisors.com", "swbell.net", "gmail.com", "gridforum.org"):
        assert never not in accounts
    assert accounts["quietco-partners.com"]["last_exchange"] < noise["quietco-partners.com"]["silent_from"]
