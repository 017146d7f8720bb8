"""People behind addresses: a name key from a display name, and the seller's own other addresses.

A display name is never kept: the mail parser turns it into :func:`name_key`, a short hash of
its name words (two letters or more, sorted), so "Presto, Kevin M." and "Kevin Presto" give the
same key while "Darrin Presto" does not. :class:`SellerPeople` learns, from mail sent by seller
addresses, which name keys and which first.last local parts are seller people; an address
outside the seller domains with one of them (``kmpresto@hotmail.com`` signed "Kevin Presto",
``kevin.presto@home.net``) is the seller's own personal address, so it is seller-side.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

from streams.sources.redact import keyed_hash

NAME_KEY = "seller-name:"  # → the seller address a name key was first seen on
LOCAL_KEY = "seller-local:"  # → the seller address a first.last local part was first seen on
_WORD = re.compile(r"[a-z]{2,}")


def name_words(display_name: str) -> list[str]:
    """The sorted name words of a display name (accents folded); [] when it is an address."""
    text = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode().lower()
    if "@" in text or "/" in text:
        return []
    return sorted(set(_WORD.findall(text)))


def name_key(display_name: str) -> str | None:
    """A hash standing for a person's name (at least two words), or ``None``. Keyed, as subjects
    are (:func:`streams.sources.redact.keyed_hash`): an unkeyed hash of a guessed name could be
    confirmed offline from a warehouse, and it stays in a row after ``forget``."""
    words = name_words(display_name)
    if len(words) < 2:
        return None
    return keyed_hash("name:" + " ".join(words))[:16]


@lru_cache(maxsize=65536)
def local_key(address: str) -> str | None:
    """A first.last style local part (two name words or more), the part that names a person."""
    local = address.rpartition("@")[0]
    words = [w for w in re.split(r"[._-]", local) if len(w) >= 2 and w.isalpha()]
    return ".".join(words) if len(words) >= 2 else None


def person_key(address: str, key: str | None = None) -> str:
    """Who an address stands for when counting people: its name key, else its name words, else itself.

    ``josey.scott@enron.com`` and Notes' reversed ``scott'.'josey`` count once.
    """
    if key:
        return "name:" + key
    local = local_key(address)
    return "local:" + ".".join(sorted(local.split("."))) if local else address


class SellerPeople:
    """Names and local parts of seller people, learned from their mail, in a store shared like the CRM's."""

    def __init__(self, store: MutableMapping[str, Any] | None = None) -> None:
        self.store: MutableMapping[str, Any] = {} if store is None else store

    def learn(self, address: str, key: str | None) -> None:
        """Record a seller address and the name key it sent under (writes only what is new)."""
        for entry in (NAME_KEY + key if key else None, LOCAL_KEY + (local_key(address) or "")):
            if entry and not entry.endswith(":") and entry not in self.store:
                self.store[entry] = address

    def seller_twin(self, address: str, key: str | None = None) -> str | None:
        """The seller address an outside address belongs to (same name or first.last), else ``None``."""
        if key and NAME_KEY + key in self.store:
            return str(self.store[NAME_KEY + key])
        local = local_key(address)
        if local and LOCAL_KEY + local in self.store:
            return str(self.store[LOCAL_KEY + local])
        return None
