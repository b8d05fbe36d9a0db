"""Random object ids: 12 random bytes as 20 lowercase base32 characters.

Ids name snapshots (commit ids), manifests, native chunks and nodes. Random ids (rather than
content hashes) let writers publish objects without reading anything first, and make every
key written exactly once.
"""

from __future__ import annotations

import base64
import re
import secrets

__all__ = ["ID_RE", "is_id", "new_id"]

ID_RE = re.compile(r"^[a-z2-7]{20}$")


def new_id() -> str:
    """A fresh random id."""
    return base64.b32encode(secrets.token_bytes(12)).decode().rstrip("=").lower()


def is_id(text: str) -> bool:
    """True when ``text`` has the shape of an id."""
    return bool(ID_RE.match(text))
