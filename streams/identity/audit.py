"""``rapport audit``: replay a mailbox through sources and identity, and show who is a relationship.

No broker and no warehouse: the same readers, copy detection, resolver and relationship ledger
as ingest, in one process. Seller people are learned from every message a seller domain sent
before anything is placed, so the seller's own personal addresses are recognised wherever they
occur in the mailbox (ingest learns them as the mail streams by). Per organisation it prints the
evidence — unique messages each way, people on each side, first and last exchange — and whether
it is a relationship or why not; overall, the share of organisations that are two-way, the
copies found, the traffic that is no relationship by reason, and suggested seller domains.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.identity.directory import normalise_address
from streams.identity.relationship import Ledger
from streams.identity.resolver import Resolver
from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.reader import Tally


def audit(items: Iterable[SourceRecord | Rejection], seller_domains: Iterable[str]) -> dict[str, Any]:
    """The audit of a mailbox as data: ``{"summary": …, "accounts": [...]}``, busiest first."""
    resolver = Resolver(seller_domains)
    if not resolver.seller_domains:
        raise ValueError("no seller domain given: pass --seller-domain (e.g. --seller-domain enron.com)")
    read = list(items)
    for item in read:  # learn seller people first, so the result does not depend on mail order
        if isinstance(item, SourceRecord) and item.envelope.schema == "raw_email/1":
            sender = normalise_address(item.envelope.payload["from"])
            if resolver.is_seller_domain(sender):
                resolver.people.learn(sender, item.envelope.payload.get("from_name_key"))
    tally = Tally()
    for item in read:
        tally.note(item, resolver)
    summary = tally.as_dict()
    ledger = tally.ledger or Ledger(resolver.seller_domains)
    accounts = []
    for r in ledger.finish():
        row = r.to_dict()
        row.update(
            relationship=r.is_relationship(),
            reason=r.reason(),
            buyer_count=len(r.buyer_people),
            seller_count=len(ledger.seller_persons(r)),
        )
        accounts.append(row)
    email = sum(1 for i in read if isinstance(i, SourceRecord) and i.envelope.schema == "raw_email/1")
    summary["copy_inflation"] = round(email / (email - summary["duplicates"]), 3) if email else None
    return {"summary": summary, "accounts": accounts}


def render_audit(report: dict[str, Any], console: Console, limit: int = 40) -> None:
    """The busiest organisations as a table, then the overall figures."""
    table = Table(
        "organisation", "in", "out", "auto", "buyers", "sellers", "first", "last", "relationship / why not"
    )
    for row in report["accounts"][:limit]:
        table.add_row(
            row["organisation"],
            str(row["inbound"]),
            str(row["outbound"]),
            str(row["automated"]),
            str(row["buyer_count"]),
            str(row["seller_count"]),
            (row["first_exchange"] or "")[:10],
            (row["last_exchange"] or "")[:10],
            "relationship" if row["relationship"] else str(row["reason"]),
        )
    console.print(table)
    shown = min(limit, len(report["accounts"]))
    console.print(f"{shown} of {len(report['accounts'])} organisations shown (busiest first; --json for all)")
    s = report["summary"]
    r = s.get("relationships", {})
    console.print(
        f"read {s['read']}: accepted {s['accepted']}, duplicates {s['duplicates']} {s['duplicates_by']} "
        f"(copy inflation {s['copy_inflation']}x), automated {s['automated']}, rejected {s['rejected']}"
    )
    console.print(
        f"organisations {r.get('organisations', 0)}, relationships {r.get('relationship_accounts', 0)}; "
        f"two-way share of organisations {r.get('two_way_share_of_organisations')}"
    )
    console.print(f"unconfirmed organisations by reason: {r.get('unconfirmed_by_reason', {})}")
    console.print(f"messages that are no interaction: {r.get('not_interactions_by_reason', {})}")
    console.print(f"automated mail by signal: {s['automated_reasons']}")
    for suggestion in s.get("suggested_seller_domains", []):
        console.print(
            f"suggested seller domain {suggestion['domain']}: {suggestion['reason']}; "
            f"add with {suggestion['add_with']}"
        )
