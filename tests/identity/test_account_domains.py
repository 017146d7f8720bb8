"""A domain a CRM account lists puts mail on that account, in replay and in the live pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from streams.config import Settings
from streams.contracts import Envelope, make
from streams.identity.resolver import (
    CONTACT_CONFIDENCE,
    CRM_DOMAIN_CONFIDENCE,
    DOMAIN_CONFIDENCE,
    SHARED_CRM_DOMAIN_CONFIDENCE,
    ResolveError,
    Resolver,
)
from streams.runtime.demo import run_through_pipeline
from streams.runtime.replay import replay
from streams.sinks.warehouse import connect
from streams.sources.dataset import read_dataset, write_dataset
from tests.identity.test_contacts import assert_any_arrival_order_gives_the_same_directory

SELLER = "seller.com"
ACME = "crm:acme-inc"
LISTED = "2026-01-05T00:00:00.000Z"  # when the CRM accounts below list their domains


def account(account_id: str, domains: list[str], at: str = LISTED) -> Envelope:
    payload = {"account_id": account_id, "name": account_id, "domains": domains, "updated_at": at}
    return make("crm_account/1", f"account:{account_id}:{at}", "test", at, payload)


def email(n: int, to: list[str], at: str, sender: str = "ann@seller.com") -> Envelope:
    payload = {"message_id": f"<d{n}@seller.com>", "from": sender, "to": to, "sent_at": at}
    return make("raw_email/1", payload["message_id"], "test", at, payload)


def placed(resolver: Resolver, message: Envelope) -> tuple[str, str, float]:
    (out,) = resolver.resolve(message)
    p = out.envelope.payload
    return out.account_id, p["match_method"], p["match_confidence"]


def test_a_listed_domain_decides_after_contacts_and_before_the_provisional_domain() -> None:
    resolver = Resolver([SELLER])
    resolver.resolve(account(ACME, ["Acme.COM", "www.acme.com"]))
    contact = {
        "contact_id": "pat",
        "account_id": "crm:acme-consulting",
        "email": "pat@acme.com",
        "name": "Pat",
        "title": "Advisor",
        "active": True,
        "updated_at": LISTED,
    }
    resolver.resolve(make("crm_contact/1", "contact:pat", "test", LISTED, contact))
    at = "2026-01-08T09:00:00.000Z"

    assert placed(resolver, email(1, ["jo@eu.acme.com"], at)) == (ACME, "crm_domain", CRM_DOMAIN_CONFIDENCE)
    # a role address joins the listed account, though it never creates one
    assert placed(resolver, email(2, ["info@acme.com"], at)) == (ACME, "crm_domain", CRM_DOMAIN_CONFIDENCE)
    # inbound from the domain, too
    assert placed(resolver, email(3, ["ann@seller.com"], at, sender="Jo@Acme.com"))[:2] == (
        ACME,
        "crm_domain",
    )
    # a known contact still comes first, even on a listed domain
    assert placed(resolver, email(4, ["pat@acme.com"], at)) == (
        "crm:acme-consulting",
        "crm_contact",
        CONTACT_CONFIDENCE,
    )
    # before the CRM listed the domain: the provisional account
    assert placed(resolver, email(5, ["jo@acme.com"], "2026-01-01T09:00:00.000Z")) == (
        "acme.com",
        "domain",
        DOMAIN_CONFIDENCE,
    )


def test_a_domain_several_accounts_list_is_a_low_confidence_guess_with_its_candidates() -> None:
    resolver = Resolver([SELLER])
    resolver.resolve(account("crm:beta-two", ["beta.io", "gamma.io"]))
    resolver.resolve(account("crm:beta-one", ["beta.io"]))
    at = "2026-01-08T09:00:00.000Z"

    (tie,) = resolver.resolve(email(6, ["a@beta.io"], at))
    assert (tie.account_id, tie.envelope.payload["match_confidence"]) == (
        "crm:beta-one",  # equal buyers: the lowest id, so every resolver picks the same
        SHARED_CRM_DOMAIN_CONFIDENCE,
    )
    assert tie.envelope.payload["detail"]["match_candidates"] == ["crm:beta-one", "crm:beta-two"]
    (most,) = resolver.resolve(email(7, ["a@beta.io", "b@gamma.io"], at))
    assert most.account_id == "crm:beta-two"  # it lists both buyers' domains
    assert most.envelope.payload["detail"]["match_candidates"] == ["crm:beta-two", "crm:beta-one"]
    (sure,) = resolver.resolve(email(8, ["b@gamma.io"], at))
    assert "match_candidates" not in sure.envelope.payload["detail"]
    assert sure.envelope.payload["match_confidence"] == CRM_DOMAIN_CONFIDENCE


def test_a_dropped_domain_and_a_listed_free_mail_domain_place_nothing() -> None:
    resolver = Resolver([SELLER])
    resolver.resolve(account(ACME, ["acme.com", "acme.de", "gmail.com"]))
    resolver.resolve(account(ACME, ["acme.com"], at="2026-02-01T00:00:00.000Z"))

    assert placed(resolver, email(9, ["jo@acme.de"], "2026-01-20T09:00:00.000Z"))[0] == ACME
    assert placed(resolver, email(10, ["jo@acme.de"], "2026-02-20T09:00:00.000Z"))[:2] == (
        "acme.de",
        "domain",
    )
    with pytest.raises(ResolveError, match=r"^unmatched"):  # free mail is nobody's domain
        resolver.resolve(email(11, ["jo@gmail.com"], "2026-01-20T09:00:00.000Z"))


ACCOUNT_VERSIONS = st.lists(
    st.tuples(
        st.sampled_from(["crm:a", "crm:b"]),
        st.integers(1, 28),
        st.lists(st.sampled_from(["acme.com", "beta.io", "gamma.co.uk"]), max_size=3),
    ),
    min_size=1,
    max_size=12,
)


@given(ACCOUNT_VERSIONS, st.randoms(use_true_random=False))
def test_account_domains_do_not_depend_on_arrival_order_or_repeats(
    versions: list[tuple[str, int, list[str]]], rng: Any
) -> None:
    """Live, account records may reach a worker late or twice; the directory ends the same."""
    records = [account(a, domains, f"2026-02-{day:02d}T00:00:00.000Z") for a, day, domains in versions]
    assert_any_arrival_order_gives_the_same_directory(records, rng)


@pytest.mark.broker
def test_listed_domain_lands_on_the_crm_account_live_and_in_replay(tmp_path: Path) -> None:
    """The worker reads account domains from its global table, replay from memory: same rows.

    No provisional account appears for the listed domain, and an unmatched email is counted by
    the data-quality board's query (reasons starting with "unmatched").
    """
    events = [
        account(ACME, ["Acme.COM"]),
        email(20, ["jo@acme.com"], "2026-01-08T09:00:00.000Z"),
        email(21, ["ann@seller.com"], "2026-01-09T09:00:00.000Z", sender="kim@eu.acme.com"),
        email(22, ["info@acme.com"], "2026-01-10T09:00:00.000Z"),
        email(23, ["lee@other.org"], "2026-01-11T09:00:00.000Z"),
        email(24, ["pat@gmail.com"], "2026-01-12T09:00:00.000Z"),
    ]
    folder = tmp_path / "data"
    write_dataset(folder, events, {})
    queries = {
        "interactions": "SELECT interaction_id, account_id, toString(match_method), "
        "round(toFloat64(match_confidence), 2) FROM rapport.interactions FINAL ORDER BY interaction_id",
        "accounts": "SELECT account_id, provisional FROM rapport.accounts FINAL ORDER BY account_id",
        "unmatched": "SELECT count() FROM rapport.rejected_events FINAL WHERE reason LIKE 'unmatched%'",
    }

    def rows(settings: Settings, run: Any) -> dict[str, list[tuple[Any, ...]]]:
        client = connect(settings.warehouse_url)
        try:
            run(client)
            return {name: client.query(sql).result_rows for name, sql in queries.items()}
        finally:
            client.close()

    live_settings = Settings.from_env(
        {"RAPPORT_HOME": str(tmp_path / "live"), "RAPPORT_SELLER_DOMAINS": SELLER}
    )
    run_through_pipeline(lambda: read_dataset(folder), live_settings, Console(quiet=True), timeout_s=180)
    live = rows(live_settings, lambda client: None)
    replay_settings = Settings.from_env(
        {"RAPPORT_HOME": str(tmp_path / "replay"), "RAPPORT_SELLER_DOMAINS": SELLER}
    )
    replayed = rows(
        replay_settings, lambda client: replay(read_dataset(folder), replay_settings, client=client)
    )

    assert replayed == live
    assert live["interactions"] == [
        ("email:<d20@seller.com>", ACME, "crm_domain", CRM_DOMAIN_CONFIDENCE),
        ("email:<d21@seller.com>", ACME, "crm_domain", CRM_DOMAIN_CONFIDENCE),
        ("email:<d22@seller.com>", ACME, "crm_domain", CRM_DOMAIN_CONFIDENCE),
        ("email:<d23@seller.com>", "other.org", "domain", DOMAIN_CONFIDENCE),
    ]
    # one-way outbound to other.org is no relationship: no accounts row (and no provisional acme.com)
    assert live["accounts"] == [(ACME, 0)]
    assert live["unmatched"] == [(1,)]
