"""docker compose interpolation: every form, unset vs empty, `$$`, and `:?` errors."""

from __future__ import annotations

import pytest

from unified_system.config.interpolate import InterpolationError, interpolate, interpolate_tree

ENV = {"SET": "value", "EMPTY": "", "PORT": "8000", "NESTED": "inner"}


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("$SET", "value"), ("${SET}", "value"), ("a-$SET-b", "a-value-b"), ("${SET}x", "valuex"),
    ("$SETx", ""),  # the name runs to the end of the identifier, as in a shell
    ("$UNSET", ""), ("${UNSET}", ""), ("${EMPTY}", ""),
    ("${SET:-d}", "value"), ("${EMPTY:-d}", "d"), ("${UNSET:-d}", "d"),
    ("${SET-d}", "value"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${UNSET:-}", ""), ("${UNSET:-a b:c}", "a b:c"),
    ("${UNSET:-${NESTED}}", "inner"), ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
    ("${SET:?boom}", "value"), ("${EMPTY?boom}", ""),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("$$", "$"), ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("cost: $$5", "cost: $5"),
    ("$", "$"), ("a$", "a$"), ("$5", "$5"), ("$-x", "$-x"), ("100$ ok", "100$ ok"),
    ("http://h:${PORT}/x", "http://h:8000/x"),
])
def test_interpolate(text, expected):
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize("text, message", [
    ("${UNSET:?set it please}", "required variable UNSET is missing a value: set it please"),
    ("${EMPTY:?no empty}", "required variable EMPTY is missing a value: no empty"),
    ("${UNSET?gone}", "required variable UNSET is not set: gone"),
    ("${UNSET:?}", "required variable UNSET is missing a value"),
    ("${UNSET:?need ${SET}}", "required variable UNSET is missing a value: need value"),
    ("${SET", "unclosed"), ("${1BAD}", "invalid interpolation format"),
    ("${}", "invalid interpolation format"), ("${A B}", "invalid interpolation format"),
])
def test_interpolate_errors(text, message):
    with pytest.raises(InterpolationError) as info:
        interpolate(text, ENV)
    assert message in str(info.value)


def test_default_is_expanded_only_when_used():
    assert interpolate("${SET:-${UNSET:?never evaluated}}", ENV) == "value"


def test_tree_interpolates_values_not_keys_and_collects_every_error():
    tree = {"$SET": ["${SET}", 3, True, None, {"k": "${A:?a}", "j": "${B:?b}"}]}
    out, errors = interpolate_tree(tree, ENV)
    assert list(out) == ["$SET"]
    assert out["$SET"][:4] == ["value", 3, True, None]
    assert errors == [(("$SET", 4, "k"), "required variable A is missing a value: a"),
                      (("$SET", 4, "j"), "required variable B is missing a value: b")]
