"""Messages never raise on a caller's value."""

from __future__ import annotations

from celery_bgtask.reprs import MAX_REPR, safe_repr


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


def test_safe_repr_survives_a_raising_repr_and_caps_the_length() -> None:
    assert safe_repr("abc") == "'abc'"
    assert safe_repr(3) == "3"
    broken = safe_repr(BrokenRepr())
    assert broken.startswith("<tests.unit.test_safe_messages.BrokenRepr object at 0x") and "repr raised" in broken
    long = safe_repr("x" * 10_000)
    assert len(long) == MAX_REPR and long.startswith("'xxx") and long.endswith("...")
