"""Task ids: our URN or a bare 32-hex id in, the bare id out."""

from __future__ import annotations

import pytest

from celery_bgtask import BgTaskError, NamespaceMismatchError, TaskValidationError
from celery_bgtask.ids import NAMESPACE, is_bare_id, new_id, parse_task_id, to_urn

HEX = "7f4b2c18a4f44f1f9ff7348e260ca4c2"


def test_new_ids_are_32_hex_and_urns_wrap_them() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert to_urn(HEX) == f"background-task:celery:{HEX}" == f"{NAMESPACE}:{HEX}"


@pytest.mark.parametrize(
    "value",
    [
        f"background-task:celery:{HEX}",
        HEX,
        HEX.upper(),
        f"  {HEX}  ",
        f"urn:background-task:celery:{HEX}",  # the optional URN scheme prefix
        f"Background-Task:Celery:{HEX.upper()}",  # URNs are case-insensitive
    ],
)
def test_accepted_forms(value: str) -> None:
    assert parse_task_id(value) == HEX
    assert parse_task_id(to_urn(parse_task_id(value))) == HEX


@pytest.mark.parametrize(
    "value",
    [f"background-task:entity-storage:{HEX}", "other:ns:whatever", f"urn:other:ns:{HEX}"],
)
def test_other_namespace_raises_namespace_mismatch(value: str) -> None:
    with pytest.raises(NamespaceMismatchError) as info:
        parse_task_id(value)
    assert isinstance(info.value, BgTaskError)
    assert not isinstance(info.value, TaskValidationError)
    assert value in str(info.value) and "background-task:celery" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        HEX[:-1],
        HEX + "0",
        "g" * 32,
        f":{HEX}",
        f"foo:{HEX}",
        "background-task:celery:",
        "background-task:celery:xyz",
        f"background-task:celery:{HEX}0",
        "a:b:",
        f"::{HEX}",
    ],
)
def test_malformed_ids_raise_validation_error(value: str) -> None:
    with pytest.raises(TaskValidationError) as info:
        parse_task_id(value)
    assert info.value.field == "task_id"
    assert str(info.value).startswith("task_id: ")


@pytest.mark.parametrize("value", [None, 123, b"abc", [HEX]])
def test_non_strings_raise_validation_error(value: object) -> None:
    with pytest.raises(TaskValidationError, match="task_id: must be a str"):
        parse_task_id(value)


@pytest.mark.parametrize(
    "value",
    [
        f"\x85{HEX}",  # NEXT LINE: str.strip() would take it
        f"{HEX}\u3000",  # IDEOGRAPHIC SPACE
        f"\u00a0{HEX}",  # NO-BREAK SPACE
        f"{HEX}\x0b",  # vertical tab and form feed: ASCII, but not the whitespace we strip
        f"{HEX}\x0c",
        f"{HEX}\x00",
        f"background-task:celery:{HEX}\u2028",
        f"background-task:celery:\u3000{HEX}",
        f"background-task\u00a0:celery:{HEX}",
        "\uff10" * 32,  # FULLWIDTH DIGIT ZERO: int() reads it, an id is ASCII
        f"background-task:celery:{HEX[:-1]}\u212a",  # KELVIN SIGN lowercases to an ASCII k
        f"{HEX}\n{HEX}",
        HEX * 10,
    ],
)
def test_padding_and_lookalike_characters_make_an_id_malformed(value: str) -> None:
    with pytest.raises(TaskValidationError) as info:
        parse_task_id(value)
    assert info.value.field == "task_id"


@pytest.mark.parametrize("value", [f" {HEX}", f"{HEX}\n", f"\t{HEX}\r\n", f" background-task:celery:{HEX}\n"])
def test_ascii_spaces_tabs_and_line_ends_around_an_id_are_stripped(value: str) -> None:
    assert parse_task_id(value) == HEX


def test_a_bare_id_is_exactly_32_lowercase_hex() -> None:
    assert is_bare_id(HEX)
    assert not is_bare_id(f"{HEX}\n")
    assert not is_bare_id(HEX.upper())


def test_a_very_long_id_is_refused_by_its_length() -> None:
    with pytest.raises(TaskValidationError, match=r"^task_id: is 10000 characters long; an id is at most 200$"):
        parse_task_id("x" * 10_000)
