"""The CRM contact directory: which account a contact's address belongs to, over event time.

Fed by ``crm_contact/1`` records, read by the resolver before the domain rule, so that a
consultant writing from gmail.com or a buyer on a subsidiary's domain lands on the CRM account.

Each address keeps its recent versions as ``[since, account_id or None]`` pairs (``None``: the
contact was made inactive), and a lookup takes the version in force at the interaction's event
time. Answers therefore depend on event time, not on the order records arrive in: a contact
record processed late (another partition, another worker) changes nothing for mail older than
it. The store is any mutable mapping: a dict in replay and ingest, a faust ``GlobalTable`` in the
live ``resolve`` agent so that every worker sees every contact.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from streams.contracts import Envelope, parse_time

VERSIONS_KEPT = 8  # per address; older versions only matter for mail older than all of them


def normalise_address(address: str) -> str:
    """Lower-case, drop plus-addressing and repeated dots in the local part."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    local = local.split("+", 1)[0]
    while ".." in local:
        local = local.replace("..", ".")
    return f"{local.strip('.')}@{domain.strip('.')}"


class ContactDirectory:
    """Address → account versions, in a store shared by every resolver that uses it."""

    def __init__(self, store: MutableMapping[str, Any] | None = None) -> None:
        self.store: MutableMapping[str, Any] = {} if store is None else store

    def learn(self, envelope: Envelope) -> None:
        """Record one ``crm_contact/1`` version (a repeat changes nothing)."""
        payload = envelope.payload
        address = normalise_address(payload["email"])
        since = parse_time(envelope.occurred_at).timestamp()
        entry = [since, payload["account_id"] if payload.get("active", True) else None]
        versions = [list(v) for v in self.store.get(address) or []]
        if entry in versions:
            return
        versions.append(entry)
        versions.sort(key=lambda v: (v[0], v[1] or ""))
        self.store[address] = versions[-VERSIONS_KEPT:]

    def account_of(self, address: str, at: float) -> str | None:
        """The account of a (normalised) address at event time ``at``; ``None`` if unknown."""
        account = None
        for since, held in self.store.get(address) or []:
            if since > at:
                break
            account = held
        return account
