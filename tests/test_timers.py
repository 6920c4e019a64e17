from unified_system.core.timers import TimerHeap


def test_timers_fire_in_deadline_order_and_skip_cancelled():
    heap = TimerHeap()
    fired = []
    heap.call_at(3.0, lambda: fired.append("c"))
    b = heap.call_at(2.0, lambda: fired.append("b"))
    heap.call_at(1.0, lambda: fired.append("a"))
    b.cancel()
    assert heap.next_deadline() == 1.0
    for timer in heap.pop_due(2.5):
        timer.action()
    assert fired == ["a"]
    assert heap.next_deadline() == 3.0 and len(heap) == 1
    for timer in heap.pop_due(3.0):
        timer.action()
    assert fired == ["a", "c"] and heap.next_deadline() is None


def test_the_loops_wait_is_clamped_to_what_queue_get_accepts():
    # A child's EXTEND_TIMEOUT_USEC=1e17 once put a deadline 1e11 s ahead: queue.get raised.
    import threading

    from unified_system.core.timers import wait_seconds

    assert wait_seconds(None, 5.0) is None
    assert wait_seconds(7.5, 5.0) == 2.5
    assert wait_seconds(1.0, 5.0) == 0.0
    assert wait_seconds(1e11, 5.0) == threading.TIMEOUT_MAX
    assert wait_seconds(float("inf"), 5.0) == threading.TIMEOUT_MAX
    assert wait_seconds(float("nan"), 5.0) == threading.TIMEOUT_MAX
    assert wait_seconds(float("-inf"), 5.0) == 0.0
