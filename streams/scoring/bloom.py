"""Event ids an account applied long ago, as a small Bloom filter kept in its state.

The state's ``seen`` ids are pruned once they are older than what the account settled. A
redelivered record older than that (a worker killed before its offsets committed, or resolve
re-emitting after a restart) then looks exactly like a new late record, and only a new one may
make the live worker rescore the account. The filter remembers every pruned id: no false
negatives (a redelivery is always known), and a false positive only makes a new late record be
ignored as it was before rescoring existed. 2,048 bits and 3 hashes: 2 % false positives at 200
pruned ids, 14 % at 500; 344 characters of base64 in the stored state.
"""

from __future__ import annotations

import base64
import hashlib

BITS = 2048
HASHES = 3


def _positions(key: str) -> list[int]:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=4 * HASHES).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "little") % BITS for i in range(HASHES)]


def with_ids(filter_b64: str, keys: list[str]) -> str:
    """The filter ``filter_b64`` (empty: none yet) with ``keys`` added."""
    bits = bytearray(base64.b64decode(filter_b64)) if filter_b64 else bytearray(BITS // 8)
    for key in keys:
        for position in _positions(key):
            bits[position // 8] |= 1 << (position % 8)
    return base64.b64encode(bytes(bits)).decode("ascii")


def may_hold(filter_b64: str, key: str) -> bool:
    """Whether ``key`` was probably added (never ``False`` for a key that was)."""
    if not filter_b64:
        return False
    bits = base64.b64decode(filter_b64)
    return all(bits[p // 8] >> (p % 8) & 1 for p in _positions(key))
