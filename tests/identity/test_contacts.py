"""CRM contacts decide the account before the domain rule, in replay and in the live pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from streams.config import Settings
from streams.contracts import Envelope, make, parse_time
from streams.identity.directory import CrmDirectory
from streams.identity.resolver import (
    CONTACT_CONFIDENCE,
    DOMAIN_CONFIDENCE,
    SPLIT_DOMAIN_CONFIDENCE,
    ResolveError,
    Resolver,
)
from streams.runtime.demo import run_through_pipeline
from streams.runtime.replay import replay
from streams.sinks.warehouse import connect
from streams.sources.dataset import read_dataset, write_dataset

SELLER = "seller.com"
ACCOUNT = "crm:acme-holdings"
CONSULTANT = "pat.consults@gmail.com"  # free mail: never an account by itself
SUBSIDIARY = "lee@acme-labs.io"  # a domain the CRM account does not list


def contact(address: str, at: str, active: bool = True, account: str = ACCOUNT) -> Envelope:
    payload = {
        "contact_id": address,
        "account_id": account,
        "email": address,
        "name": address.split("@")[0],
        "title": "Advisor",
        "active": active,
        "updated_at": at,
    }
    return make("crm_contact/1", f"contact:{address}:{at}", "test", at, payload)


def email(n: int, to: list[str], at: str) -> Envelope:
    payload = {"message_id": f"<m{n}@seller.com>", "from": "ann@seller.com", "to": to, "sent_at": at}
    return make("raw_email/1", payload["message_id"], "test", at, payload)


def test_a_known_contact_decides_the_account_at_event_time() -> None:
    resolver = Resolver([SELLER])
    resolver.resolve(contact(CONSULTANT, "2026-01-10T00:00:00.000Z"))
    resolver.resolve(contact(CONSULTANT, "2026-03-01T00:00:00.000Z", active=False))

    (during,) = resolver.resolve(email(1, [CONSULTANT.upper()], "2026-02-01T09:00:00.000Z"))
    p = during.envelope.payload
    assert (during.account_id, p["match_method"], p["match_confidence"]) == (
        ACCOUNT,
        "crm_contact",
        CONTACT_CONFIDENCE,
    )
    for before_or_after in ("2026-01-01T09:00:00.000Z", "2026-03-02T09:00:00.000Z"):
        with pytest.raises(ResolveError, match="unmatched"):  # free mail, and not a contact then
            resolver.resolve(email(2, [CONSULTANT], before_or_after))


def test_directory_answers_follow_event_time() -> None:
    directory = CrmDirectory()
    for record in (
        contact(SUBSIDIARY, "2026-01-10T00:00:00.000Z"),
        contact(SUBSIDIARY, "2026-02-10T00:00:00.000Z", account="crm:other"),
        contact(SUBSIDIARY, "2026-03-10T00:00:00.000Z", active=False),
    ):
        directory.learn(record)

    def on(day: str) -> str | None:
        return directory.account_of(SUBSIDIARY, parse_time(day).timestamp())

    assert on("2026-01-01T00:00:00Z") is None
    assert on("2026-01-20T00:00:00Z") == ACCOUNT
    assert on("2026-02-20T00:00:00Z") == "crm:other"
    assert on("2026-03-20T00:00:00Z") is None


VERSIONS = st.lists(
    st.tuples(st.integers(1, 28), st.sampled_from([ACCOUNT, "crm:other", None])), min_size=1, max_size=12
)


@given(VERSIONS, st.randoms(use_true_random=False))
def test_directory_does_not_depend_on_arrival_order_or_repeats(
    versions: list[tuple[int, str | None]], rng: Any
) -> None:
    """Live, contact records may reach a worker late or twice; the directory ends the same."""
    records = [
        contact(
            SUBSIDIARY,
            f"2026-02-{day:02d}T00:00:00.000Z",
            active=account is not None,
            account=account or ACCOUNT,
        )
        for day, account in versions
    ]
    assert_any_arrival_order_gives_the_same_directory(records, rng)


def assert_any_arrival_order_gives_the_same_directory(records: list[Any], rng: Any) -> None:
    """Every record, some twice, in any order: the directory ends as if they came in order."""
    shuffled = records + rng.sample(records, len(records))
    rng.shuffle(shuffled)
    in_order, arrived = CrmDirectory(), CrmDirectory()
    for record in sorted(records, key=lambda r: r.occurred_at):
        in_order.learn(record)
    for record in shuffled:
        arrived.learn(record)
    assert in_order.store == arrived.store


def test_domain_rule_is_less_sure_when_buyers_span_several_domains() -> None:
    resolver = Resolver([SELLER])
    at = "2026-02-01T09:00:00.000Z"
    (one,) = resolver.resolve(email(3, ["a@buyer.com", "b@eu.buyer.com"], at))
    (split,) = resolver.resolve(email(4, ["a@buyer.com", "b@buyer.com", "c@partner.org"], at))
    assert (one.account_id, one.envelope.payload["match_confidence"]) == ("buyer.com", DOMAIN_CONFIDENCE)
    assert (split.account_id, split.envelope.payload["match_method"]) == ("buyer.com", "domain")
    assert split.envelope.payload["match_confidence"] == SPLIT_DOMAIN_CONFIDENCE


@pytest.mark.broker
def test_contacts_off_the_account_domain_land_on_the_crm_account_live_and_in_replay(tmp_path: Path) -> None:
    """The worker reads the directory from its global table, replay from memory: same rows."""
    account = make(
        "crm_account/1",
        "account:acme:1",
        "test",
        "2026-01-05T00:00:00.000Z",
        {
            "account_id": ACCOUNT,
            "name": "Acme Holdings",
            "domains": ["acme.com"],
            "updated_at": "2026-01-05T00:00:00.000Z",
        },
    )
    events = [
        account,
        email(10, [SUBSIDIARY], "2026-01-08T09:00:00.000Z"),  # before the CRM knew Lee: the domain
        contact(CONSULTANT, "2026-01-10T00:00:00.000Z"),
        contact(SUBSIDIARY, "2026-01-10T00:00:00.000Z"),
        email(11, [CONSULTANT], "2026-01-12T09:00:00.000Z"),
        email(12, [SUBSIDIARY, "kim@acme-labs.io"], "2026-01-13T09:00:00.000Z"),
        email(13, ["ops@acme.com", CONSULTANT], "2026-01-14T09:00:00.000Z"),
    ]
    folder = tmp_path / "data"
    write_dataset(folder, events, {})
    sql = (
        "SELECT interaction_id, account_id, match_method, match_confidence "
        "FROM rapport.interactions FINAL ORDER BY interaction_id"
    )
    settings = Settings.from_env({"RAPPORT_HOME": str(tmp_path / "live"), "RAPPORT_SELLER_DOMAINS": SELLER})
    run_through_pipeline(lambda: read_dataset(folder), settings, Console(quiet=True), timeout_s=180)
    client = connect(settings.warehouse_url)
    try:
        live: list[tuple[Any, ...]] = client.query(sql).result_rows
    finally:
        client.close()

    replayed = Settings.from_env({"RAPPORT_HOME": str(tmp_path / "replay"), "RAPPORT_SELLER_DOMAINS": SELLER})
    client = connect(replayed.warehouse_url)
    try:
        replay(read_dataset(folder), replayed, client=client)
        assert client.query(sql).result_rows == live
    finally:
        client.close()
    placed = {row[0]: (row[1], row[2]) for row in live}
    assert placed == {
        "email:<m10@seller.com>": ("acme-labs.io", "domain"),
        "email:<m11@seller.com>": (ACCOUNT, "crm_contact"),
        "email:<m12@seller.com>": (ACCOUNT, "crm_contact"),
        "email:<m13@seller.com>": (ACCOUNT, "crm_contact"),
    }
