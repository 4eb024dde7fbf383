"""Hypothesis strategies for hostile input: odd text, huge and non-finite numbers, deep JSON, bent ids."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from tests.helpers import deep

HEX = "7f4b2c18a4f44f1f9ff7348e260ca4c2"

#: Characters that have broken something somewhere: NUL, lone surrogates, LIKE wildcards,
#: quotes, Unicode spaces and line ends, a lookalike, an astral character.
NASTY = ["\x00", "\ud800", "\udfff", "%", "_", "'", '"', "\\", ";", "\x85", "\u3000", "\u00a0", "\u2028",
         "\n", "\t", " ", "\u212a", "\uff10", "😀", "é", ":", "."]

#: Any text, surrogates included, with the nasty characters mixed in often.
text = st.one_of(
    st.text(st.sampled_from(NASTY) | st.characters(exclude_categories=[]), max_size=12),
    st.text(max_size=12),
    st.sampled_from(["", " ", "x" * 201, "a_c", "a%c", "celery", "t"]),
)



def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, so that accepted calls get exercised as much as refused ones."""
    return st.integers(min_value=0, max_value=3).flatmap(lambda pick: bad if pick == 3 else good)


#: Text that any database stores: no NUL, no lone surrogate (astral and odd characters welcome).
clean_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)

#: Task types, definition and schedule ids: mostly names that work, else broken ones.
names = mostly(
    st.sampled_from(["t", "image-resize", "a_c", "a%c", "Ab C", "ab c", "äb c", "😀", "😁", "\u3000x"])
    | clean_text.filter(str.strip),
    st.one_of(text, st.none(), st.integers()),
)

#: Numbers at and past every bound, of every type a caller might pass.
numbers = st.one_of(
    st.none(),
    st.integers(min_value=-3, max_value=10_010),
    st.integers(),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**80, 10**15, 2_073_600_000, 2_073_600_001,
                     3_155_760_000_000, 3_155_760_000_001, 253_402_300_799_999, 253_402_300_800_000, -(2**63)]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.5, 1e308]),
    st.booleans(),
    st.sampled_from(["5", "", b"1"]),
    st.timedeltas(),
    st.sampled_from([timedelta.max, timedelta.min, timedelta(0), timedelta(days=24), timedelta(days=36_526)]),
)



def option(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An option: None or a value that should pass, else any number at all."""
    return mostly(st.none() | valid, numbers)


#: Options with their sane ranges.
retry_counts = option(st.integers(min_value=0, max_value=10_000))
retry_intervals = option(st.integers(min_value=1, max_value=2_073_600_000))
retain_fors = option(st.integers(min_value=-1, max_value=3_155_760_000_000))
delays = option(st.floats(min_value=0, max_value=3_155_760_000))
chunk_sizes = option(st.integers(min_value=1, max_value=1000))
limits = option(st.integers(min_value=1, max_value=1000))

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([2**80, -(2**70)]), st.floats(), text)
_keys = st.one_of(text, st.integers(min_value=-2, max_value=2), st.none(), st.floats(allow_nan=False))
_clean_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                           clean_text)

#: JSON documents: mostly ones that store (str keys, finite numbers, clean text, a few levels
#: or up to the depth limit), else odd keys and scalars or nesting far too deep.
documents = mostly(
    st.recursive(
        _clean_scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(clean_text, inner, max_size=4),
        max_leaves=12,
    ) | st.integers(min_value=90, max_value=100).map(deep),
    st.one_of(
        st.recursive(
            _scalars,
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
            max_leaves=12,
        ),
        st.integers(min_value=99, max_value=1200).map(deep),
        st.sampled_from([{1: "a", "1": "b"}, {"a": {"b": [1, 2, {"c": "\x00"}]}}, "x" * 5000, {"k": object()}]),
    ),
)


def _bent_id(draw: Any) -> str:
    base = draw(st.sampled_from([HEX, HEX.upper(), f"background-task:celery:{HEX}", f"urn:background-task:celery:{HEX}",
                                 f"background-task:other:{HEX}"]))
    where = draw(st.integers(min_value=0, max_value=len(base)))
    how = draw(st.sampled_from(["insert", "drop", "replace", "keep"]))
    char = draw(st.sampled_from(NASTY) | st.characters(exclude_categories=[]))
    if how == "insert":
        return base[:where] + char + base[where:]
    if how == "drop":
        return base[:where] + base[where + 1:]
    if how == "replace":
        return base[:where] + char + base[where + 1:]
    return base


#: The fields of a schedule time, within their bounds.
time_fields = {
    "nextTriggerTime": st.integers(min_value=0, max_value=253_402_300_799_999),
    "intervalDays": st.integers(min_value=1, max_value=36_525),
    "intervalHours": st.integers(min_value=1, max_value=876_600),
    "intervalMinutes": st.integers(min_value=1, max_value=52_596_000),
}
_good_time = st.fixed_dictionaries({}, optional=time_fields).filter(bool)
_bad_time = st.dictionaries(st.sampled_from([*time_fields, "next_trigger_time", "interval_minutes", "everyDay"]),
                            numbers, max_size=3)
#: ``add_task``'s ``times``: mostly lists of good times, else anything.
times = mostly(st.lists(_good_time, min_size=1, max_size=3), st.lists(mostly(_good_time, _bad_time), max_size=3)
               | numbers | text)

#: Task ids: well-formed ones of nobody, bent ones, and anything at all.
ids = st.one_of(st.composite(_bent_id)(), text, st.none(), st.integers(), st.binary(max_size=4))
