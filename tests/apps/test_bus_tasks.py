"""The AI task queue on a real NATS JetStream broker: priorities, retries, the dead-letter
stream and its re-queue/drop routes (issue 18, item 3). Real nats-server, real nats-py."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from .natsd import NatsServer
from .support import ROOT, NotifyListener, Procs, free_port, get, http, wait_for

TASKS_TOKEN = "tasks-token-with-'quotes'-and-\"more\""


@pytest.fixture
def listener():
    lis = NotifyListener()
    yield lis
    lis.close()


def start_backend(procs: Procs, listener: NotifyListener, tmp_path, broker: NatsServer, **env: str):
    port = free_port()
    base = {"PYTHON_PORT": str(port), "DATA_DIR": str(tmp_path / "data"),
            "NOTIFY_SOCKET": listener.address, "LOG_LEVEL": "warning",
            "LEDGER_TOKEN": "test-ledger-token-0123456789", "NATS_URL": broker.url,
            "TASKS_TOKEN": TASKS_TOKEN,
            "AI_ENABLED": "true", "PYTHONPATH": str(ROOT / "src")}
    proc = procs.backend({**base, **env})
    listener.wait_for("READY=1", timeout=30)
    url = f"http://127.0.0.1:{port}"
    # Routes answer 503 until the bus thread has its streams and consumers.
    wait_for(lambda: http("GET", f"{url}/api/tasks/stats")[0] == 200, 30, "the bus to connect")
    return proc, url


def publish(url: str, items: list[tuple[str, dict]]) -> list[int]:
    """Publish tasks straight to JetStream, as any producer on the bus would."""
    async def go() -> list[int]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            return [(await js.publish(subject, json.dumps(body).encode(), stream="TASKS")).seq
                    for subject, body in items]
        finally:
            await nc.close()
    return asyncio.run(go())


def test_high_priority_tasks_finish_before_a_backlog_of_low_ones(procs, listener, tmp_path):
    broker = NatsServer(procs, tmp_path / "nats")
    proc, _ = start_backend(procs, listener, tmp_path, broker)
    assert proc.stop() == 0  # the streams now exist; queue everything with no worker running
    lows = publish(broker.url, [("tasks.low", {"type": "echo", "payload": i}) for i in range(100)])
    highs = publish(broker.url, [("tasks.high", {"type": "echo", "payload": i}) for i in range(10)])
    _, url = start_backend(procs, listener, tmp_path, broker, AI_RATE_LIMIT="500")

    def all_done() -> list[dict] | None:
        tasks = get(f"{url}/api/tasks?limit=1000")["tasks"]
        done = [t for t in tasks if t["state"] == "succeeded"]
        return tasks if len(done) == 110 else None

    tasks = {t["id"]: t for t in wait_for(all_done, 60, "110 tasks to succeed")}
    first_low = min(tasks[i]["started_seq"][0] for i in lows)
    last_high = max(tasks[i]["started_seq"][0] for i in highs)
    assert last_high < first_low, (last_high, first_low)
    assert {tasks[i]["priority"] for i in highs} == {"high"}
    stats = get(f"{url}/api/tasks/stats")
    # Cost accounting is kept: every task paid for its tokens.
    assert stats["by_state"]["succeeded"] == 110 and stats["cost_usd"] > 0 and stats["bus"]


def test_an_always_failing_task_lands_in_the_dlq_after_max_deliver_then_requeues(
        procs, listener, tmp_path):
    broker = NatsServer(procs, tmp_path / "nats")
    _, url = start_backend(procs, listener, tmp_path, broker, AI_MAX_ATTEMPTS="3",
                           AI_BACKOFF_INITIAL="0.05", AI_RATE_LIMIT="100")
    status, task = http("POST", f"{url}/api/tasks", {"type": "fail", "payload": {"text": "x"},
                                                     "priority": "high"})
    assert status == 201, task

    def dead() -> list[dict]:
        return get(f"{url}/api/tasks/dead-letter")["tasks"]

    (entry,) = wait_for(dead, 30, "the failing task in TASKS_DLQ")
    assert entry["task_id"] == task["id"] and entry["deliveries"] == 3
    assert entry["error"] == "TaskError: task type 'fail' always fails"
    assert entry["priority"] == "high" and entry["type"] == "fail"
    record = get(f"{url}/api/tasks/{task['id']}")
    assert record["state"] == "dead" and record["attempts"] == 3 and len(record["errors"]) == 3

    # The writes are keyed like every other backend write.
    requeue = f"{url}/api/tasks/dead-letter/{entry['dlq_seq']}/requeue"
    assert http("POST", requeue, token=None)[0] == 401
    assert http("POST", requeue, token="forged")[0] == 403
    # TASKS_TOKEN (the gateway's) may re-queue, and may not submit tasks nor write trades.
    assert http("POST", f"{url}/api/tasks", {"type": "echo"}, token=TASKS_TOKEN)[0] == 403
    fill = {"fill_id": "f1", "side": "buy", "quantity": 1, "price": 1}
    assert http("POST", f"{url}/api/trades", fill, token=TASKS_TOKEN)[0] == 403
    status, body = http("POST", requeue, token=TASKS_TOKEN)
    assert status == 201 and body["task"]["id"] != task["id"], body
    again = body["task"]["id"]
    # The re-queued copy fails again and comes back as a new dead letter of the new task.
    wait_for(lambda: [e for e in dead() if e["task_id"] == again], 30, "the re-queued task to die")
    (back,) = dead()
    assert http("DELETE", f"{url}/api/tasks/dead-letter/{back['dlq_seq']}", token=None)[0] == 401
    assert http("DELETE", f"{url}/api/tasks/dead-letter/{back['dlq_seq']}")[0] == 204
    assert dead() == []
    assert http("DELETE", f"{url}/api/tasks/dead-letter/{back['dlq_seq']}")[0] == 404
    assert http("POST", f"{url}/api/tasks/dead-letter/99999/requeue")[0] == 404
    assert http("POST", f"{url}/api/tasks/dead-letter/{2**70}/requeue")[0] == 422


def test_a_garbage_message_on_the_queue_is_dead_lettered_not_a_crash(procs, listener, tmp_path):
    broker = NatsServer(procs, tmp_path / "nats")
    proc, url = start_backend(procs, listener, tmp_path, broker)
    (seq,) = publish(broker.url, [("tasks.normal", "not an object")])
    (junk,) = publish(broker.url, [("tasks.low", {"type": "no-such-type", "payload": "'\"$(x)"})])
    entries = wait_for(lambda: (lambda e: e if len(e) == 2 else None)(
        get(f"{url}/api/tasks/dead-letter")["tasks"]), 30, "both in the DLQ")
    by_id = {e["task_id"]: e for e in entries}
    assert "unreadable task" in by_id[seq]["error"]
    assert "unknown task type" in by_id[junk]["error"]
    status, ok = http("POST", f"{url}/api/tasks", {"type": "echo", "payload": 1})
    wait_for(lambda: get(f"{url}/api/tasks/{ok['id']}")["state"] == "succeeded", 30, "echo")
    assert proc.popen.poll() is None


@pytest.mark.slow
def test_a_task_whose_deliveries_run_out_without_a_verdict_is_moved_by_the_advisory(
        procs, listener, tmp_path):
    """A worker that took a task and died (here: a client that pulls and never acks) leaves
    no error behind; the server's MAX_DELIVERIES advisory still gets the task to the DLQ."""
    broker = NatsServer(procs, tmp_path / "nats")
    proc, _ = start_backend(procs, listener, tmp_path, broker, AI_MAX_ATTEMPTS="1")
    assert proc.stop() == 0
    (seq,) = publish(broker.url, [("tasks.normal", {"type": "echo", "payload": "lost"})])

    async def take_and_vanish() -> int:
        nc = await nats.connect(broker.url)
        try:
            sub = await nc.jetstream().pull_subscribe_bind("tasks-normal", stream="TASKS")
            (msg,) = await sub.fetch(1, timeout=10)
            return msg.metadata.sequence.stream
        finally:
            await nc.close()  # no ack: the delivery's ack wait (10 s) must run out

    assert asyncio.run(take_and_vanish()) == seq
    _, url = start_backend(procs, listener, tmp_path, broker, AI_MAX_ATTEMPTS="1")
    (entry,) = wait_for(lambda: get(f"{url}/api/tasks/dead-letter")["tasks"], 60,
                        "the advisory to move the task")
    assert entry["task_id"] == seq and entry["deliveries"] == 1
    assert entry["error"].startswith("no verdict") and entry["payload"] == "lost"
    assert get(f"{url}/api/tasks/stats")["dead_letter"] == 1


def test_forged_max_deliveries_advisories_that_do_not_fit_move_nothing(procs, listener, tmp_path):
    broker = NatsServer(procs, tmp_path / "nats")
    # One token and a refill of once in 1000 s: the second task stays queued on TASKS.
    proc, url = start_backend(procs, listener, tmp_path, broker, AI_RATE_LIMIT="0.001",
                              AI_BURST="1", AI_MAX_ATTEMPTS="3")
    first = http("POST", f"{url}/api/tasks", {"type": "echo", "payload": 1})[1]
    wait_for(lambda: get(f"{url}/api/tasks/{first['id']}")["state"] == "succeeded", 30, "the first")
    queued = http("POST", f"{url}/api/tasks", {"type": "echo", "payload": 2})[1]["id"]
    subject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.TASKS.tasks-normal"
    forged = [b"not json", b"[]", b'{"stream_seq": "x"}', b"{" * 100_000,
              json.dumps({"consumer": "someone-else", "stream_seq": queued, "deliveries": 99}).encode(),
              json.dumps({"consumer": "tasks-normal", "stream_seq": queued, "deliveries": 1}).encode(),
              json.dumps({"consumer": "tasks-normal", "stream_seq": 2**80, "deliveries": 9}).encode()]

    async def forge() -> bool:
        nc = await nats.connect(broker.url)
        try:
            for body in forged:
                await nc.publish(subject, body)
            await nc.flush()
            # A round trip through the backend (the summary request): the server delivered the
            # advisories to it before the request. Then the task must still be on TASKS.
            await nc.request("backend.trades.summary", b"", timeout=10)
            return (await nc.jetstream().get_msg("TASKS", queued)).seq == queued
        finally:
            await nc.close()

    assert asyncio.run(forge())
    assert get(f"{url}/api/tasks/dead-letter")["tasks"] == []
    assert get(f"{url}/api/tasks/{queued}")["state"] == "queued"
    assert proc.popen.poll() is None
