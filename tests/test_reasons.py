"""Restart reasons: one Enum carries planned / dumps / log level (no lists in three files)."""

import json

import pytest

from unified_system.core.reasons import EXIT_REASONS, Reason


@pytest.mark.parametrize("reason, planned, dumps, level", [
    (Reason.CRASH, False, True, "warning"),
    (Reason.LIVENESS, False, True, "warning"),
    (Reason.FREEZE, False, True, "warning"),
    (Reason.MEMORY, False, True, "warning"),
    (Reason.NOTIFY, False, True, "info"),
    (Reason.WATCH, True, False, "info"),
    (Reason.RELOAD, True, False, "info"),
    (Reason.DEPENDENCY, True, False, "info"),
    (Reason.MANUAL, True, False, "info"),
    (Reason.STOP, False, False, "info"),
    (Reason.ROLLOUT_FAILED, False, False, "info"),
])
def test_each_reason_carries_what_the_owner_decides_from_it(reason, planned, dumps, level):
    assert reason.planned is planned
    assert reason.dumps is dumps
    assert reason.log_level(ok=False) == level
    assert reason.log_level(ok=True) == "info"


def test_a_mistyped_reason_is_an_error_not_an_unplanned_restart():
    with pytest.raises(ValueError):
        Reason("manaul")
    assert Reason.of(None, Reason.CRASH) is Reason.CRASH and Reason.of("watch") is Reason.WATCH


def test_reasons_are_written_as_their_spec_strings():
    assert json.dumps({"reason": Reason.ROLLOUT_FAILED}) == '{"reason": "rollout failed"}'
    assert f"{Reason.MANUAL}" == "manual" and Reason.CRASH == "crash"
    assert EXIT_REASONS == ("crash", "liveness", "freeze", "memory", "watch", "reload",
                            "dependency", "manual", "notify", "stop")
