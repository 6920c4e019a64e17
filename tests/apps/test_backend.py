"""The backend service: a real ``python -m backend`` on free ports, plus AI manager units."""

from __future__ import annotations

import signal
import socket
import sys

import pytest
from backend.ai_manager import AIManager, TokenBucket, Worker, backoff_delay  # noqa: E402

from harness import refused_port

from .support import FDEXEC, LEDGER_TOKEN, NotifyListener, Procs, free_port, get, http, wait_for


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listener():
    lis = NotifyListener()
    yield lis
    lis.close()


def start_backend(procs: Procs, listener: NotifyListener, tmp_path, **env: str):
    port = free_port()
    base_env = {"PYTHON_PORT": str(port), "DATA_DIR": str(tmp_path / "data"),
                "NOTIFY_SOCKET": listener.address, "LOG_LEVEL": "warning",
                "LEDGER_TOKEN": LEDGER_TOKEN}
    proc = procs.backend({**base_env, **env})
    listener.wait_for("READY=1", timeout=20)  # sent only once uvicorn is listening
    return proc, f"http://127.0.0.1:{port}"


# -- the process ---------------------------------------------------------------------------
def test_ready_heartbeats_health_and_graceful_sigterm(procs, listener, tmp_path):
    proc, url = start_backend(procs, listener, tmp_path, WATCHDOG_USEC="200000")
    health = get(f"{url}/health")
    assert health["status"] == "ok"
    listener.wait_for("WATCHDOG=1", timeout=5)
    status = get(f"{url}/api/status")
    assert status["ai_enabled"] is False and status["counts"]["trades"] == 0
    assert status["version"] and status["uptime_seconds"] >= 0
    assert proc.stop(signal.SIGTERM) == 0, proc.output()
    listener.wait_for("STOPPING=1", timeout=5)
    assert (tmp_path / "data" / "backend.sqlite3").exists()


def test_trades_are_idempotent_on_fill_id(procs, listener, tmp_path):
    _, url = start_backend(procs, listener, tmp_path)
    fill = {"fill_id": "42-7", "symbol": "SIM", "side": "buy", "quantity": 10, "price": 101.5}
    status, first = http("POST", f"{url}/api/trades", fill)
    assert status == 201
    status, again = http("POST", f"{url}/api/trades", {**fill, "price": 999})
    assert status == 200 and again == first  # the stored row, not the new body
    sell = {"fill_id": "42-9", "side": "sell", "quantity": 10, "price": 103.0, "realized_pnl": 15.0}
    assert http("POST", f"{url}/api/trades", sell)[0] == 201
    assert http("POST", f"{url}/api/trades", {"fill_id": "x", "side": "hold"})[0] == 422
    # the model bounds every number: one forged figure cannot swamp the summary
    for bad in ({"realized_pnl": -1e15}, {"quantity": 1e300}, {"price": 1e10}, {"tick": -1},
                {"fill_id": "a b"}, {"fill_id": "x" * 201}):
        assert http("POST", f"{url}/api/trades", {**sell, "fill_id": "42-10", **bad})[0] == 422, bad
    # writes need the token: none is 401, another one 403, and neither changes anything
    assert http("POST", f"{url}/api/trades", {**fill, "fill_id": "f-1"}, token=None)[0] == 401
    assert http("POST", f"{url}/api/trades", {**fill, "fill_id": "f-2"}, token="forged")[0] == 403

    trades = get(f"{url}/api/trades?limit=10")["trades"]
    assert [t["fill_id"] for t in trades] == ["42-9", "42-7"]  # newest first
    assert [t["fill_id"] for t in get(f"{url}/api/trades?limit=1")["trades"]] == ["42-9"]
    summary = get(f"{url}/api/trades/summary")
    assert summary["count"] == 2 and summary["realized_pnl"] == 15.0
    assert summary["last_fill"]["fill_id"] == "42-9"
    assert get(f"{url}/api/status")["counts"]["trades"] == 2


def test_tasks_answer_404_with_a_reason_when_ai_is_disabled(procs, listener, tmp_path):
    _, url = start_backend(procs, listener, tmp_path, AI_ENABLED="false")
    for method, path in [("GET", "/api/tasks"), ("POST", "/api/tasks"), ("GET", "/api/tasks/stats")]:
        status, body = http(method, url + path, {"type": "echo"} if method == "POST" else None)
        assert status == 404 and "AI_ENABLED" in body["detail"]


def test_ai_task_queue_end_to_end(procs, listener, tmp_path):
    _, url = start_backend(procs, listener, tmp_path, AI_ENABLED="1", AI_RATE_LIMIT="50",
                           AI_MAX_ATTEMPTS="3", AI_BACKOFF_INITIAL="0.05")
    status, batch = http("POST", f"{url}/api/tasks/batch", {"tasks": [
        {"type": "echo", "payload": {"n": 1}, "priority": "low"},
        {"type": "classify", "payload": {"text": "great profit, good day"}, "priority": "normal"},
        {"type": "summarize", "payload": {"text": "First sentence here. Second."}, "priority": "high"},
    ]})
    assert status == 201
    low, normal, high = (t["id"] for t in batch["tasks"])
    status, failing = http("POST", f"{url}/api/tasks", {"type": "fail", "payload": "x"})
    assert status == 201 and failing["state"] == "queued"
    assert http("POST", f"{url}/api/tasks", {"type": "nope"})[0] == 422
    assert http("POST", f"{url}/api/tasks", {"type": "echo", "priority": "urgent"})[0] == 422

    def finished(task_id: int) -> dict:
        task = get(f"{url}/api/tasks/{task_id}")
        return task if task["state"] in ("succeeded", "dead") else None

    done = {i: wait_for(lambda i=i: finished(i), 10, f"task {i}") for i in (low, normal, high)}
    # One atomic batch: the worker must take it in priority order, not arrival order.
    assert done[high]["started_seq"][0] < done[normal]["started_seq"][0] < done[low]["started_seq"][0]
    assert done[high]["result"] == {"summary": "First sentence here.", "words": 4}
    assert done[normal]["result"]["label"] == "positive"
    assert done[low]["result"] == {"n": 1}

    dead = wait_for(lambda: finished(failing["id"]), 10, "the failing task to die")
    assert dead["state"] == "dead" and dead["attempts"] == 3 and len(dead["errors"]) == 3
    assert [t["id"] for t in get(f"{url}/api/tasks/dead-letter")["tasks"]] == [failing["id"]]
    stats = get(f"{url}/api/tasks/stats")
    assert stats["by_state"]["succeeded"] == 3 and stats["by_state"]["dead"] == 1
    assert stats["attempts"] == 6 and stats["cost_usd"] > 0
    assert set(stats["cost_by_type"]) == {"echo", "classify", "summarize", "fail"}
    assert http("GET", f"{url}/api/tasks/9999")[0] == 404
    assert len(get(f"{url}/api/tasks?state=succeeded")["tasks"]) == 3


def test_serves_on_an_inherited_socket_when_listen_fds_is_set(procs, listener, tmp_path):
    sock = socket.create_server(("127.0.0.1", 0))
    # PYTHON_PORT stays held (bound, not listening) so no other test takes it meanwhile
    with refused_port() as unused_port:
        try:
            port = sock.getsockname()[1]
            procs.backend(
                {"PYTHON_PORT": str(unused_port), "DATA_DIR": str(tmp_path / "data"),
                 "NOTIFY_SOCKET": listener.address, "LOG_LEVEL": "warning"},
                pass_fds=(sock.fileno(),),
                argv_prefix=[sys.executable, str(FDEXEC), str(sock.fileno()), "http", "--"],
            )
        finally:
            sock.close()  # the backend holds its own copy now
        listener.wait_for("READY=1", timeout=20)
        assert get(f"http://127.0.0.1:{port}/health")["status"] == "ok"
        with pytest.raises(ConnectionRefusedError):  # it did not bind PYTHON_PORT as well
            socket.create_connection(("127.0.0.1", unused_port), timeout=2).close()


# -- the AI manager without HTTP ---------------------------------------------------------------
def test_priority_order_then_fifo_within_a_priority():
    clock = FakeClock()
    m = AIManager(rate_limit=100, burst=100, clock=clock)
    ids = [m.submit("echo", i, p).id for i, p in enumerate(["low", "normal", "high", "normal", "high"])]
    ran = []
    while (task := m.step()) is not None:
        ran.append(task.id)
    assert ran == [ids[2], ids[4], ids[1], ids[3], ids[0]]
    assert m.next_wait() is None


def test_rate_limit_token_bucket_with_an_injected_clock():
    clock = FakeClock(0.0)
    m = AIManager(rate_limit=2, burst=1, clock=clock)
    for i in range(3):
        m.submit("echo", i)
    assert m.step() is not None
    assert m.step() is None  # bucket empty
    assert m.next_wait() == pytest.approx(0.5)
    clock.now = 0.49
    assert m.step() is None
    clock.now = 0.5
    assert m.step() is not None
    clock.now = 10.0  # a long idle period saves up at most `burst` tokens
    assert m.step() is not None and m.next_wait() is None

    bucket = TokenBucket(rate=1, capacity=3, now=0)
    assert [bucket.try_take(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(0) == pytest.approx(1.0)


def test_retries_back_off_exponentially_then_dead_letter():
    clock = FakeClock(0.0)
    m = AIManager(rate_limit=1000, burst=10, max_attempts=3, backoff_initial=1.0,
                  backoff_multiplier=2.0, backoff_max=60, clock=clock)
    task = m.submit("fail", {"text": "boom"})
    assert m.step().state == "retrying" and task.next_attempt_at == 1.0
    assert m.next_wait() == pytest.approx(1.0)
    clock.now = 0.99
    assert m.step() is None
    clock.now = 1.0
    assert m.step().attempts == 2 and task.next_attempt_at == 3.0  # 1s, then 2s
    clock.now = 3.0
    assert m.step().state == "dead"
    assert m.dead_letters()[0]["id"] == task.id and m.next_wait() is None
    stats = m.stats()
    assert stats["by_state"]["dead"] == 1 and stats["attempts"] == 3
    assert stats["cost_usd"] == pytest.approx(task.tokens / 1000 * 0.002)
    assert [backoff_delay(n, 0.5, 2, 3) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_a_retry_waits_behind_nothing_but_keeps_its_priority():
    clock = FakeClock(0.0)
    calls = {"n": 0}

    def flaky(payload):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transient")
        return "ok"

    m = AIManager(rate_limit=1000, burst=10, backoff_initial=1, clock=clock,
                  handlers={"flaky": flaky, "echo": lambda p: p})
    high = m.submit("flaky", None, "high")
    assert m.step().state == "retrying"
    low = m.submit("echo", None, "low")
    assert m.step().id == low.id  # the retry is not due yet
    clock.now = 1.0
    assert m.step().id == high.id and high.state == "succeeded" and high.result == "ok"
    with pytest.raises(ValueError):
        m.submit("unknown")


def test_worker_thread_processes_and_stops():
    m = AIManager(rate_limit=1000, burst=1000)
    worker = Worker(m)
    worker.start()
    try:
        tasks = [m.submit("classify", {"text": "bad loss"}) for _ in range(5)]
        wait_for(lambda: all(t.state == "succeeded" for t in tasks), 5, "5 tasks done")
        assert tasks[0].result["label"] == "negative"
    finally:
        worker.stop()
    assert not worker.is_alive()
