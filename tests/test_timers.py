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
