"""The audit on the real Enron mailbox presto-k (seller domain enron.com).

Figures measured on it (recorded in docs/sources.md): 2,204 messages, 121 folder copies found by
fingerprint (1.058× inflation before), 49 organisations, 12 relationships, all two-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.identity.audit import audit
from streams.identity.domains import organisation_domain
from streams.identity.noise import bulk_sender_reason
from streams.sources.reader import read_sources


@pytest.fixture(scope="module")
def report(real_data: Path) -> dict[str, Any]:
    mailbox = real_data / "enron" / "presto-k"
    if not mailbox.is_dir():
        pytest.skip(f"{mailbox} is absent (set RAPPORT_REAL_DATA to the folder holding enron/presto-k)")
    return audit(read_sources([mailbox]), ["enron.com"])


def test_copies_are_duplicates_and_the_summary_adds_up(report: dict[str, Any]) -> None:
    s = report["summary"]
    assert s["read"] == 2204
    assert s["accepted"] + s["duplicates"] + s["automated"] + s["rejected"] == s["read"]
    # Enron's folder copies (sent, sent_items, all_documents, discussion_threads) carry new
    # Message-IDs: only the fingerprint finds them.
    assert s["duplicates_by"].get("fingerprint", 0) == s["duplicates"] >= 100
    assert s["copy_inflation"] > 1.05
    print(f"presto-k: {s['duplicates']} folder copies; inflation {s['copy_inflation']}x before removal")


def test_no_free_mail_isp_or_automated_sender_is_a_relationship(report: dict[str, Any]) -> None:
    relationships = [a for a in report["accounts"] if a["relationship"]]
    assert relationships
    for account in relationships:
        assert organisation_domain(account["organisation"]) == account["organisation"], account
        assert account["inbound"] > 0 and account["outbound"] > 0, account
        assert account["senders"] and not any(bulk_sender_reason(p) for p in account["senders"]), account
    names = {a["organisation"] for a in relationships}
    for noise in ("adversend.com", "quote.com", "americanexpress.com", "hotmail.com", "rr.com", "skytel.com"):
        assert noise not in names
    by_reason = {a["organisation"]: a["reason"] for a in report["accounts"]}
    assert by_reason["adversend.com"] == by_reason["americanexpress.com"] == "automated"
    assert by_reason["ubspainewebber.com"] == "one-way outbound"  # 24 outbound, never a reply


def test_every_relationship_is_two_way_and_the_top_ones_are_real_counterparties(
    report: dict[str, Any],
) -> None:
    r = report["summary"]["relationships"]
    assert r["two_way_share_of_relationship_accounts"] == 1.0  # no CRM here: two-way by construction
    top = [a["organisation"] for a in report["accounts"] if a["relationship"]][:5]
    assert {"ubsw.com", "hgp-inc.com"} <= set(top)
    print(f"presto-k: {r['relationship_accounts']} of {r['organisations']} orgs are relationships, top {top}")


def test_mail_without_a_seller_and_the_sellers_own_addresses_are_no_interaction(
    report: dict[str, Any],
) -> None:
    reasons = report["summary"]["relationships"]["not_interactions_by_reason"]
    assert reasons["no seller participant"] > 0
    assert (
        "no seller participant; mail between outside parties (a bcc'd or forwarded report) is no interaction"
        in (report["summary"]["rejection_reasons"])
    )
    organisations = {a["organisation"] for a in report["accounts"]}
    assert "hotmail.com" not in organisations and "enron.com" not in organisations


def test_the_affiliate_is_suggested_as_a_seller_domain(report: dict[str, Any]) -> None:
    suggested = {s["domain"]: s for s in report["summary"]["suggested_seller_domains"]}
    assert "enron.net" in suggested and suggested["enron.net"]["people"]
    assert not next(a for a in report["accounts"] if a["organisation"] == "enron.net")["relationship"]
