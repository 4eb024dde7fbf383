"""Opaque, signed keyset cursors for ``query``.

A cursor carries the last row's sort key and id plus a fingerprint of the query that made
it, signed with HMAC-SHA256 under a secret kept in the database. A cursor that was edited,
forged, or made by a different query (other filters, sort or direction) fails the check
and is rejected with ``TaskValidationError``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from ..errors import TaskValidationError

_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
