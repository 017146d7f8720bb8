"""Organisation domains: the registered domain under the public suffix list, less free-mail and ISPs.

Shared by the resolver (which domain a buyer's address stands for) and the CRM directory (which
domains a CRM account lists), so both reduce a domain the same way.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract

from streams.identity.freemail import FREE_MAIL

# The public suffix list snapshot bundled with tldextract; never fetched over the network.
_PSL = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registered_domain(domain: str) -> str:
    """The organisation's domain under its public suffix ('' if the domain is a suffix itself)."""
    return str(_PSL(domain).top_domain_under_public_suffix).lower()


@lru_cache(maxsize=65536)
def organisation_domain(domain: str) -> str:
    """The registered domain an organisation owns, or '' (free-mail or ISP provider, bare suffix)."""
    host = domain.strip().lower().rstrip(".")
    organisation = registered_domain(host)
    return "" if organisation in FREE_MAIL or host in FREE_MAIL else organisation
