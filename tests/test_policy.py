"""Pure restart policy: tables, no processes, time passed in."""

import os
import signal

import pytest

from unified_system.core.policy import (
    ExitStatus,
    budget_spent,
    classify_exit,
    next_delay,
    recent,
    should_restart,
    signal_name,
)

CLEAN, FAIL, KILLED = ExitStatus(code=0), ExitStatus(code=3), ExitStatus(signal=signal.SIGKILL)


@pytest.mark.parametrize("policy,status,expected", [
    ("always", CLEAN, True), ("always", FAIL, True), ("always", KILLED, True),
    ("on-failure", CLEAN, False), ("on-failure", FAIL, True), ("on-failure", KILLED, True),
    ("never", CLEAN, False), ("never", FAIL, False), ("never", KILLED, False),
])
def test_should_restart(policy, status, expected):
    assert should_restart(policy, status) is expected


@pytest.mark.parametrize("attempt,expected", [
    (0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 32.0), (7, 60.0), (20, 60.0),
])
def test_backoff_grows_then_caps(attempt, expected):
    assert next_delay(attempt, 1.0, 60.0, 2.0, 0.0, 0.5) == pytest.approx(expected)


@pytest.mark.parametrize("rand,expected", [(0.0, 3.6), (0.5, 4.0), (0.999999, 4.4)])
def test_backoff_jitter_spreads_symmetrically(rand, expected):
    assert next_delay(3, 1.0, 60.0, 2.0, 0.1, rand) == pytest.approx(expected, abs=1e-4)


def test_zero_initial_means_immediate():
    assert next_delay(5, 0.0, 60.0, 2.0, 0.1, 0.7) == 0.0


@pytest.mark.parametrize("times,now,expected", [
    ([], 100.0, False),
    ([95, 96, 97, 98, 99], 100.0, False),         # 5 within 60 s: the budget allows 5
    ([95, 96, 97, 98, 99, 100], 100.0, True),     # the 6th opens the circuit
    ([1, 2, 3, 4, 5, 100], 100.0, False),         # old restarts slid out of the window
])
def test_budget_window(times, now, expected):
    assert budget_spent(times, now, 60.0, 5) is expected


def test_recent_is_a_sliding_window():
    assert recent([0, 30, 59, 61], 120.0, 60.0) == [61]


def test_exit_status_from_wait_status():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert ExitStatus.from_wait_status(status) == ExitStatus(code=7)
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    killed = ExitStatus.from_wait_status(status)
    assert killed.signal_name == "SIGKILL" and killed.describe() == "killed by SIGKILL"
    assert signal_name(999) == "SIG999"


@pytest.mark.parametrize("status,requested,rss,limit,expected", [
    (ExitStatus(code=1), False, None, None, "exit code 1"),
    (ExitStatus(code=127), False, None, None, "exit code 127: command not found"),
    (ExitStatus(code=126), False, None, None, "exit code 126: not executable"),
    (ExitStatus(signal=signal.SIGKILL), False, 95, 100,
     "killed by SIGKILL near its memory limit, probably out of memory"),
    (ExitStatus(signal=signal.SIGKILL), False, 50, 100,
     "killed by SIGKILL (by another process, or the kernel's OOM killer)"),
    (ExitStatus(signal=signal.SIGKILL), True, 95, 100, "killed by SIGKILL"),
    (ExitStatus(signal=signal.SIGSEGV), False, None, None, "killed by SIGSEGV (segmentation fault)"),
    (ExitStatus(signal=signal.SIGABRT), False, None, None, "killed by SIGABRT (aborted)"),
])
def test_classify_exit(status, requested, rss, limit, expected):
    assert classify_exit(status, requested, rss, limit) == expected
