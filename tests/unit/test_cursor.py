"""Query cursors: signed, bound to the query that issued them, rejected when tampered with."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest

from celery_bgtask import TaskValidationError
from celery_bgtask.store import cursor as cursors

SECRET = secrets.token_bytes(32)
FP = cursors.fingerprint("image-resize", "pending", "date_created", "asc")
LAST = "0123456789abcdef0123456789abcdef"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _reject(cursor: object, secret: bytes = SECRET, fp: str = FP) -> str:
    with pytest.raises(TaskValidationError) as info:
        cursors.decode(secret, fp, cursor)
    assert info.value.field == "cursor"
    return info.value.rule


@pytest.mark.parametrize("key", [1_773_052_200_000, -1, "pending"])
def test_a_cursor_decodes_to_its_key_and_id(key: object) -> None:
    token = cursors.encode(SECRET, FP, key, LAST)
    assert cursors.decode(SECRET, FP, token) == (key, LAST)
    assert token.count(".") == 1  # opaque text: body.signature


def test_fingerprint_depends_on_every_part() -> None:
    variants = {
        cursors.fingerprint("image-resize", "pending", "date_created", "asc"),
        cursors.fingerprint("image-resize", "pending", "date_created", "desc"),
        cursors.fingerprint("image-resize", "pending", "date_modified", "asc"),
        cursors.fingerprint("image-resize", None, "date_created", "asc"),
        cursors.fingerprint(None, "pending", "date_created", "asc"),
    }
    assert len(variants) == 5


def test_tampered_body_is_rejected() -> None:
    token = cursors.encode(SECRET, FP, 1000, LAST)
    body, mac = token.split(".")
    forged_body = _b64(json.dumps([FP, 0, LAST], separators=(",", ":")).encode())
    assert "signature" in _reject(f"{forged_body}.{mac}")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    _reject(f"{flipped}.{mac}")


def test_tampered_signature_is_rejected() -> None:
    token = cursors.encode(SECRET, FP, 1000, LAST)
    body, _ = token.split(".")
    assert "signature" in _reject(f"{body}.{_b64(bytes(16))}")
    assert "signature" in _reject(f"{body}.")


def test_forged_cursor_with_another_secret_is_rejected() -> None:
    forged = cursors.encode(secrets.token_bytes(32), FP, 1000, LAST)
    assert "signature" in _reject(forged)


def test_cursor_of_another_query_is_rejected() -> None:
    other = cursors.fingerprint("image-resize", "pending", "date_created", "desc")
    token = cursors.encode(SECRET, other, 1000, LAST)
    assert "different query" in _reject(token)


@pytest.mark.parametrize("bad", ["", "nodot", "a.b.c", "!!!.???", "é.é", "abc"])
def test_malformed_cursors_are_rejected(bad: str) -> None:
    _reject(bad)


@pytest.mark.parametrize("bad", [123, b"abc.def", ["x"]])
def test_non_string_cursors_are_rejected(bad: object) -> None:
    assert "must be a str" in _reject(bad)


def _respelled(token: str, change: Any) -> str:
    return ".".join(change(part) for part in token.split("."))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b + "=" * (-len(b) % 4 or 4),  # padding
        # Characters outside the alphabet, four so the length stays a multiple: a lenient decoder drops them.
        lambda b: b[:4] + "!*!*" + b[4:],
        lambda b: b[:4] + "\n\n\n\n" + b[4:],
        lambda b: b[:4] + "    " + b[4:],
        lambda b: b[:4] + "\u00e9" + b[4:],
        lambda b: b.replace("-", "+").replace("_", "/"),  # the other base64 alphabet
    ],
    ids=["padded", "bang", "newline", "space", "non-ascii", "standard-alphabet"],
)
def test_only_the_exact_spelling_a_query_returned_is_accepted(change: Any) -> None:
    # A cursor whose base64 holds both - and _ (in its body or its signature).
    token = next(t for k in range(10_000) if {"-", "_"} <= set(t := cursors.encode(SECRET, FP, k, LAST)))
    assert cursors.decode(SECRET, FP, token)[1] == LAST
    spelled = _respelled(token, change)
    assert spelled != token
    assert "malformed" in _reject(spelled)


def test_a_non_canonical_final_character_is_rejected() -> None:
    """Base64 whose unused low bits are set decodes to the same bytes; it is not what we wrote."""
    token = cursors.encode(SECRET, FP, 7, LAST)
    body, mac = token.split(".")
    assert len(mac) % 4 != 0  # 16 bytes: the last character carries unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(mac[-1])
    respelled = f"{body}.{mac[:-1]}{alphabet[last | 1]}"
    assert respelled != token and _b64(base64.urlsafe_b64decode(mac[:-1] + alphabet[last | 1] + "==")) == mac
    assert "malformed" in _reject(respelled)


def test_a_huge_cursor_is_rejected_by_its_length() -> None:
    assert "too long" in _reject("A" * 100_000 + "." + "A" * 22)
