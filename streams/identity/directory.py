"""The CRM directory: which account an address or an organisation domain belongs to, over event time.

Fed by ``crm_contact/1`` records (address → account) and ``crm_account/1`` records (account →
the domains it lists), read by the resolver before the provisional domain rule, so that a
consultant writing from gmail.com, a buyer on a subsidiary's domain, or anyone on a domain the
CRM lists lands on the CRM account rather than on a provisional one.

Both kinds are kept the same way: each key holds its recent versions as ``[since, value]``
pairs, and a lookup takes the version in force at the interaction's event time (``None`` for a
contact made inactive). Answers therefore depend on event time, not on the order records arrive
in: a record processed late (another partition, another worker) changes nothing for mail older
than it. A domain also keeps the ids of every account that ever listed it (a union, so equally
order-free); an account's version in force decides whether it lists the domain at that time.
The store is any mutable mapping: a dict in replay and ingest, a faust ``GlobalTable`` in the
live ``resolve`` agent so that every worker sees every CRM record.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

from streams.contracts import Envelope, parse_time
from streams.identity.domains import organisation_domain

VERSIONS_KEPT = 8  # per key; older versions only matter for mail older than all of them

# Key prefixes: one store holds all three, so one global table serves the live workers.
ADDRESS = "address:"  # → versions of [since, account id or None]
ACCOUNT = "account:"  # → versions of [since, sorted organisation domains]
DOMAIN = "domain:"  # → sorted ids of every account that has listed the domain


# Lotus Notes quoted each dot of a name it forwarded (``cliff'.'baxter@enron.com``).
_QUOTED_DOTS = re.compile(r"['\"]+\.['\"]*|['\"]*\.['\"]+")
# Exchange wraps a foreign address into its own domain: ``IMCEANOTES-...+40acme+2Ecom...@enron.com``.
_WRAPPED = re.compile(r"^imcea[a-z]*-(.*)@[^@]+$")
_INNER_ADDRESS = re.compile(r"([a-z0-9._%'+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+)")


def unwrap_address(address: str) -> str:
    """The foreign address inside an Exchange-rewritten one (``IMCEANOTES-…@enron.com``), else as is.

    Exchange encodes the original with ``+XX`` hex escapes (``+40`` for ``@``, ``+2E`` for ``.``)
    and appends its own domain; the buyer then looks seller-side. The percent hack
    (``ann%acme.com@relay``) is unwrapped the same way.
    """
    lowered = address.strip().strip("<>").lower()
    wrapped = _WRAPPED.match(lowered)
    if wrapped:
        decoded = re.sub(r"\+([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), wrapped.group(1))
        inner = _INNER_ADDRESS.findall(decoded)
        return inner[0] if inner else lowered
    local = lowered.rpartition("@")[0]
    if "%" in local:
        user, _, relayed = local.rpartition("%")
        if user and "." in relayed:
            return f"{user}@{relayed}"
    return lowered


@lru_cache(maxsize=65536)
def normalise_address(address: str) -> str:
    """Lower-case; unwrap rewritten foreign addresses; drop plus-addressing, quoted and repeated dots.

    ``Cliff'.'Baxter@Enron.com`` → ``cliff.baxter@enron.com``; ``M..Presto+deals@enron.com`` →
    ``m.presto@enron.com``. A quote inside a name stays (``justin.o'malley@enron.com``).
    """
    local, _, domain = unwrap_address(address).rpartition("@")
    local = local.split("+", 1)[0]
    local = _QUOTED_DOTS.sub(".", local).strip("'\"")
    while ".." in local:
        local = local.replace("..", ".")
    return f"{local.strip('.')}@{domain.strip('.')}"


class CrmDirectory:
    """CRM contacts and account domains as event-time versions, in a store shared by resolvers."""

    def __init__(self, store: MutableMapping[str, Any] | None = None) -> None:
        self.store: MutableMapping[str, Any] = {} if store is None else store

    def learn(self, envelope: Envelope) -> None:
        """Record one ``crm_contact/1`` or ``crm_account/1`` version (a repeat changes nothing)."""
        payload = envelope.payload
        since = parse_time(envelope.occurred_at).timestamp()
        if envelope.schema == "crm_contact/1":
            account = payload["account_id"] if payload.get("active", True) else None
            self._add_version(ADDRESS + normalise_address(payload["email"]), since, account)
        elif envelope.schema == "crm_account/1":
            account = payload["account_id"]
            domains = sorted({d for d in map(organisation_domain, payload["domains"]) if d})
            self._add_version(ACCOUNT + account, since, domains)
            for domain in domains:
                listed = set(self.store.get(DOMAIN + domain) or [])
                if account not in listed:
                    self.store[DOMAIN + domain] = sorted(listed | {account})

    def forget(self, address: str) -> None:
        """Drop a (normalised) address's versions: ``rapport forget``."""
        self.store.pop(ADDRESS + address, None)

    def account_of(self, address: str, at: float) -> str | None:
        """The account of a (normalised) address at event time ``at``; ``None`` if unknown."""
        account: str | None = self._value_at(ADDRESS + address, at)
        return account

    def accounts_of_domain(self, domain: str, at: float) -> list[str]:
        """The CRM accounts listing an organisation domain at event time ``at``, sorted by id."""
        return [
            account
            for account in self.store.get(DOMAIN + domain) or []
            if domain in (self._value_at(ACCOUNT + account, at) or ())
        ]

    def _add_version(self, key: str, since: float, value: Any) -> None:
        entry = [since, value]
        versions = [list(v) for v in self.store.get(key) or []]
        if entry in versions:
            return
        versions.append(entry)
        versions.sort(key=lambda v: (v[0], str(v[1])))
        self.store[key] = versions[-VERSIONS_KEPT:]

    def _value_at(self, key: str, at: float) -> Any:
        value = None
        for since, held in self.store.get(key) or []:
            if since > at:
                break
            value = held
        return value
