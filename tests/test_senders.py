"""Whose service a notify datagram speaks for, and what a child's numbers may mean: the
pure decisions of proc/senders.py and proc/notify.py, as tables (the real programs are in
test_notify_senders.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unified_system.proc.notify import Datagram, lineage, usec_seconds
from unified_system.proc.senders import Senders


def datagram(pid: int, chain: tuple[int, ...]) -> Datagram:
    return Datagram(pid, chain, (("READY", "1"),), 0.0)


def test_attribution_by_lineage_read_at_arrival():
    senders = Senders()
    mains = {100: 7}
    assert senders.attribute(datagram(300, (300, 200, 100, 1)), mains) == (100, 7)
    assert senders.attribute(datagram(100, (100, 1)), mains) == (100, 7)
    assert senders.attribute(datagram(400, (400, 50, 1)), mains) is None      # another tree
    assert senders.attribute(datagram(100, ()), mains) == (100, 7)            # a main, gone
    # Gone before arrival: accepted only when an earlier datagram placed it in the tree.
    assert senders.attribute(datagram(300, ()), mains) == (100, 7)
    assert senders.attribute(datagram(200, ()), mains) == (100, 7)
    assert senders.attribute(datagram(999, ()), mains) is None
    # ... and while that incarnation is current: a pid of a replaced one speaks for nobody.
    assert senders.attribute(datagram(300, ()), {100: 8}) is None
    assert senders.attribute(datagram(300, ()), {}) is None
    # A live pid is judged by its lineage now, never by what the pid once was.
    assert senders.attribute(datagram(300, (300, 50, 1)), mains) is None
    assert senders.refused_total == 5


def test_refusals_are_reported_once_per_sender_and_bounded():
    senders = Senders(refusals=3)
    assert [senders.first_refusal(p) for p in (5, 5, 6, 5, 7, 8, 9, 8)] == \
        [True, False, True, False, True, True, False, False]
    assert senders.refusals_capped


def test_the_remembered_members_are_bounded():
    senders = Senders(remember=2)
    for pid in (11, 12, 13):
        senders.attribute(datagram(pid, (pid, 100)), {100: 1})
    assert senders.attribute(datagram(11, ()), {100: 1}) is None   # the oldest was forgotten
    assert senders.attribute(datagram(13, ()), {100: 1}) == (100, 1)


def test_lineage_reads_the_parent_chain_and_nothing_for_a_gone_pid():
    chain = lineage(os.getpid())
    assert chain[:2] == (os.getpid(), os.getppid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert lineage(proc.pid) == ()


@pytest.mark.parametrize(("text", "seconds"), [
    ("5000000", 5.0), ("0", 0.0), (" 250000\n", 0.25),
    ("100000000000000000", 86400.0), ("9" * 4000, 86400.0),
    ("-5", None), ("nan", None), ("inf", None), ("1e9", None), ("", None), ("²", None),
    ("0x10", None), ("+5", None),
])
def test_a_childs_microseconds_are_digits_only_and_clamped(text, seconds):
    assert usec_seconds(text, 86400.0) == seconds
