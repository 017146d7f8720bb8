"""Organisation domains: the registered domain under the public suffix list, and free-mail providers.

Shared by the resolver (which domain a buyer's address stands for) and the CRM directory (which
domains a CRM account lists), so both reduce a domain the same way.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract

# The public suffix list snapshot bundled with tldextract; never fetched over the network.
_PSL = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.ru",
        "qq.com",
        "163.com",
        "zoho.com",
        "earthlink.net",
        "comcast.net",
        "att.net",
        "juno.com",
        "excite.com",
        "netscape.net",
        "prodigy.net",
        "compuserve.com",
        "bellsouth.net",
        "verizon.net",
        "sbcglobal.net",
    }
)


@lru_cache(maxsize=65536)
def registered_domain(domain: str) -> str:
    """The organisation's domain under its public suffix ('' if the domain is a suffix itself)."""
    return str(_PSL(domain).top_domain_under_public_suffix).lower()


def organisation_domain(domain: str) -> str:
    """The registered domain an organisation owns, or '' (free-mail provider, bare suffix)."""
    organisation = registered_domain(domain.strip().lower().rstrip("."))
    return "" if organisation in FREE_MAIL else organisation
