"""Opaque, signed keyset cursors for ``query``.

A cursor carries the last row's sort key and id plus a fingerprint of the query that made
it, signed with HMAC-SHA256 under a secret kept in the database. A cursor that was edited,
forged, or made by a different query (other filters, sort or direction) fails the check
and is rejected with ``TaskValidationError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from ..errors import TaskValidationError

_MAC_BYTES = 16
#: The URL-safe alphabet, unpadded: exactly what ``encode`` writes.
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: Far longer than any cursor ``encode`` makes (a fingerprint, a sort key and an id).
_MAX_CURSOR_CHARS = 1000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict decoding: only the URL-safe alphabet, no padding, and only the canonical form,
    so that a cursor has exactly one spelling (``binascii.Error`` is a ``ValueError``)."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded URL-safe base64")
    data = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    if _b64(data) != text:
        raise binascii.Error("not the canonical encoding")
    return data


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:16]


def encode(secret: bytes, query_fp: str, key: Any, last_id: str) -> str:
    body = json.dumps([query_fp, key, last_id], separators=(",", ":")).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(body)}.{_b64(mac)}"


def decode(secret: bytes, query_fp: str, cursor: object) -> tuple[Any, str]:
    """Return ``(sort_key, last_id)`` or raise ``TaskValidationError``."""
    if not isinstance(cursor, str):
        raise TaskValidationError("cursor", f"must be a str from a previous query, got {type(cursor).__name__}")
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise TaskValidationError("cursor", f"is {len(cursor)} characters, too long to be one a query returned")
    try:
        body_text, mac_text = cursor.split(".")
        body, mac = _unb64(body_text), _unb64(mac_text)
    except ValueError:
        raise TaskValidationError("cursor", "is malformed: pass the cursor a previous query returned") from None
    want = hmac.new(secret, body, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, want):
        raise TaskValidationError("cursor", "signature does not match: it was altered or not issued here")
    fp, key, last_id = json.loads(body)
    if fp != query_fp:
        raise TaskValidationError("cursor", "was issued for a different query (filters, sort or direction)")
    return key, str(last_id)
