"""The AI task queue on NATS JetStream: priorities, retries with backoff, a dead-letter stream.

Tasks are messages on the work-queue stream ``TASKS`` (subjects ``tasks.high``,
``tasks.normal``, ``tasks.low``); a task's id is its ``TASKS`` sequence. One durable pull
consumer per priority, each with ``max_deliver`` and ``backoff``, so the worker can always
ask the higher priority first: it pulls one message at a time with ``no_wait`` from high,
then normal, then low, and starts over from high after every task.

A task whose last allowed attempt fails is copied to ``TASKS_DLQ`` (subject ``dlq.tasks``)
with its error and delivery count, then acked off ``TASKS``. A task that runs out of
deliveries without any verdict (the worker died, or overran its ack wait) is moved the same
way when the server's ``MAX_DELIVERIES`` advisory names it. Both paths publish with
``Nats-Msg-Id: dlq-<seq>``, so a task reaches the dead-letter stream once.

The rate limit (token bucket) and the cost accounting are the in-memory queue's
(ai_manager.py). Everything here runs on the bus thread's event loop (busthread.py), which
owns the task records; HTTP handlers reach it through ``BusThread.call``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from .ai_manager import PRIORITIES, Task, TokenBucket, backoff_delay, estimate_tokens, task_stats
from .bus import replicas
from .handlers import HANDLERS
from .settings import AISettings

log = logging.getLogger("backend.taskbus")

STREAM = "TASKS"
DLQ_STREAM = "TASKS_DLQ"
DLQ_SUBJECT = "dlq.tasks"
EVENTS_PREFIX = "events.tasks"  # core NATS: events.tasks.<state>, for the gateway's live view
ORDER = ("high", "normal", "low")  # the pull order: always the most urgent first
CONSUMERS = frozenset(f"tasks-{p}" for p in ORDER)
MAX_DELIVERIES_ADVISORY = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.*"
NO_VERDICT = "no verdict: deliveries ran out without an ack (worker died or overran its ack wait)"
IDLE_WAKE = 1.0  # seconds: the longest the worker sleeps with nothing to pull
# The server redelivers a task nobody settled after its backoff step; the worker naks with
# the configured delay itself, so the server's steps only need to outlast a running handler.
ACK_WAIT_FLOOR = 10.0


def consumer_name(priority: str) -> str:
    return f"tasks-{priority}"


def retry_delays(ai: AISettings) -> list[float]:
    """The consumer's backoff: one delay per redelivery, so one fewer than max_deliver."""
    return [backoff_delay(n, ai.backoff_initial, ai.backoff_multiplier, ai.backoff_max)
            for n in range(1, ai.max_attempts)]


def _status(msg: Msg) -> str | None:
    """The status of a pull reply that carries no message (404 no messages, 408 expired)."""
    return (msg.headers or {}).get("Status") if not msg.data else None


class BusTasks:
    """The task queue's state and its JetStream plumbing; lives on one event loop."""

    def __init__(self, ai: AISettings, clock: Callable[[], float] = time.monotonic,
                 handlers: dict[str, Callable[[Any], Any]] | None = None) -> None:
        self.ai = ai
        self.clock = clock
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.bucket = TokenBucket(ai.rate_limit, ai.burst, clock())
        self.tasks: dict[int, Task] = {}
        self.dead: list[int] = []  # task ids this backend moved to the dead-letter stream
        self.last_error: dict[int, str] = {}  # by TASKS sequence, for the advisory path
        self._attempt_seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._pull_inbox: str | None = None
        self._pulls: Subscription | None = None

    # -- setup ------------------------------------------------------------------------
    async def setup(self, nc: NATS) -> None:
        """Create (or update) the streams and consumers; idempotent across restarts."""
        self._nc, self._js = nc, nc.jetstream()
        js = self._js
        await _add_or_update(js, StreamConfig(
            name=STREAM, subjects=[f"tasks.{p}" for p in ORDER],
            retention=RetentionPolicy.WORK_QUEUE, duplicate_window=120.0,
            storage=StorageType.FILE, num_replicas=replicas()))
        await _add_or_update(js, StreamConfig(
            name=DLQ_STREAM, subjects=[DLQ_SUBJECT], max_msgs=100_000, duplicate_window=600.0,
            storage=StorageType.FILE, num_replicas=replicas()))
        delays = retry_delays(self.ai)
        for priority in ORDER:
            await js.add_consumer(STREAM, ConsumerConfig(
                durable_name=consumer_name(priority), filter_subject=f"tasks.{priority}",
                ack_policy=AckPolicy.EXPLICIT, max_deliver=self.ai.max_attempts,
                ack_wait=ACK_WAIT_FLOOR,
                backoff=([max(ACK_WAIT_FLOOR, d) for d in delays] or None),
                max_ack_pending=1000))
        # Any publish on tasks.* wakes an idle worker at once (a core subscription sees
        # JetStream publishes too).
        await nc.subscribe("tasks.*", cb=self._on_publish)
        await nc.subscribe(MAX_DELIVERIES_ADVISORY, cb=self._on_max_deliveries)

    async def _on_publish(self, msg: Msg) -> None:
        self._wake.set()

    # -- submission -------------------------------------------------------------------
    def validate(self, type_: str, priority: str) -> None:
        if type_ not in self.handlers:
            raise ValueError(f"unknown task type {type_!r}; known: {sorted(self.handlers)}")
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; one of {list(PRIORITIES)}")

    async def submit_many(self, specs: list[dict[str, Any]]) -> list[Task]:
        for spec in specs:
            self.validate(spec["type"], spec.get("priority", "normal"))
        return [await self._publish_task(spec) for spec in specs]

    async def _publish_task(self, spec: dict[str, Any], requeued_from: int | None = None) -> Task:
        assert self._js is not None
        priority = spec.get("priority") or "normal"
        body = {"type": spec["type"], "payload": spec.get("payload"),
                "max_attempts": spec.get("max_attempts")}
        if requeued_from is not None:
            body["requeued_from"] = requeued_from
        ack = await self._js.publish(f"tasks.{priority}", json.dumps(body).encode(), stream=STREAM)
        return self._record(ack.seq, body, priority)

    def _record(self, seq: int, body: dict[str, Any], priority: str) -> Task:
        task = self.tasks.get(seq)
        if task is None:
            task = Task(id=seq, type=str(body.get("type")), payload=body.get("payload"),
                        priority=priority, max_attempts=self._max_attempts(body),
                        created_at=self.clock())
            self.tasks[seq] = task
        return task

    def _max_attempts(self, body: dict[str, Any]) -> int:
        # The consumer's max_deliver caps every task; a task may ask for fewer attempts.
        asked = body.get("max_attempts")
        cap = self.ai.max_attempts
        return min(cap, asked) if isinstance(asked, int) and asked >= 1 else cap

    # -- the worker -------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        """Pull and run tasks, most urgent first, until ``stopping`` is set."""
        while not stopping.is_set():
            wait = self.bucket.wait_time(self.clock())
            if wait > 0:
                await _wait(stopping, min(wait, IDLE_WAKE))
                continue
            try:
                msg = await self._next()
            except Exception as exc:  # noqa: BLE001 - the broker away: retry, never crash
                log.warning("pulling tasks failed: %s", exc)
                await self._new_inbox()
                await _wait(stopping, IDLE_WAKE)
                continue
            if msg is None:
                self._wake.clear()
                # Redeliveries after a backoff do not publish on tasks.*, hence the cap.
                wake = asyncio.ensure_future(self._wake.wait())
                stop = asyncio.ensure_future(stopping.wait())
                await asyncio.wait({wake, stop}, timeout=self._idle_wait(),
                                   return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                stop.cancel()
                continue
            self.bucket.try_take(self.clock())
            try:
                await self._attempt(msg)
            except Exception as exc:  # noqa: BLE001 - ack/nak lost: the server redelivers
                log.warning("settling a task failed: %s", exc)

    def _idle_wait(self) -> float:
        pending = [t.next_attempt_at for t in self.tasks.values()
                   if t.state == "retrying" and t.next_attempt_at is not None]
        if not pending:
            return IDLE_WAKE
        return min(IDLE_WAKE, max(0.01, min(pending) - self.clock()))

    async def _next(self) -> Msg | None:
        """One message from the most urgent consumer that has one, else None.

        A pull with ``no_wait`` answers at once: a message or a 404 status. Replies come on
        an inbox of our own (a delivered message keeps its original subject, which the
        client's request multiplexer would not route back to a request)."""
        assert self._nc is not None
        if self._pull_inbox is None:
            self._pull_inbox = self._nc.new_inbox()
            self._pulls = await self._nc.subscribe(self._pull_inbox)
        assert self._pulls is not None
        for priority in ORDER:
            subject = f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{consumer_name(priority)}"
            await self._nc.publish(subject, b'{"batch":1,"no_wait":true}', reply=self._pull_inbox)
            reply = await self._pulls.next_msg(timeout=5)
            if _status(reply) is None:
                return reply
        return None

    async def _new_inbox(self) -> None:
        """After a pull went unanswered: a late reply would answer the *next* pull (another
        priority's), and every later one would be off by one, so start a fresh inbox. A
        message that lands in the old one is redelivered after its ack wait."""
        pulls, self._pulls, self._pull_inbox = self._pulls, None, None
        if pulls is not None:
            try:
                await pulls.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - closed with the connection already
                log.debug("old pull inbox: %s", exc)

    async def _attempt(self, msg: Msg) -> None:
        meta = msg.metadata
        seq, delivered = meta.sequence.stream, meta.num_delivered
        priority = msg.subject.rsplit(".", 1)[-1]
        try:
            body = json.loads(msg.data)
            if not isinstance(body, dict):
                raise ValueError("a task is a JSON object")
        except ValueError as exc:
            # A message no worker could ever run: dead at once, with the reason.
            body = {"type": "?", "payload": msg.data.decode(errors="replace")[:1000]}
            task = self._record(seq, body, priority if priority in PRIORITIES else "normal")
            task.attempts = delivered
            await self._bury(msg, task, f"unreadable task: {exc}", delivered)
            return
        task = self._record(seq, body, priority)
        task.state, task.attempts, task.next_attempt_at = "running", delivered, None
        task.started_seq.append(next(self._attempt_seq))
        await self._event(task)
        handler = self.handlers.get(task.type)
        tokens = estimate_tokens(task.payload)
        try:
            if handler is None:
                raise ValueError(f"unknown task type {task.type!r}")
            result, error = handler(task.payload), None
            tokens += estimate_tokens(result)
        except Exception as exc:  # noqa: BLE001 - any handler failure is a failed attempt
            result, error = None, f"{type(exc).__name__}: {exc}"
        task.tokens += tokens
        task.cost_usd += tokens / 1000 * 0.002
        now = self.clock()
        if error is None:
            await msg.ack_sync()
            task.state, task.result, task.finished_at = "succeeded", result, now
            self.last_error.pop(seq, None)
        elif delivered >= task.max_attempts:
            task.errors.append(error)
            await self._bury(msg, task, error, delivered)
            return
        else:
            task.errors.append(error)
            self.last_error[seq] = error
            delay = backoff_delay(delivered, self.ai.backoff_initial, self.ai.backoff_multiplier,
                                  self.ai.backoff_max)
            await msg.nak(delay=delay)
            task.state, task.next_attempt_at = "retrying", now + delay
        await self._event(task, error)

    async def _bury(self, msg: Msg, task: Task, error: str, deliveries: int) -> None:
        """Copy to the dead-letter stream, then ack off TASKS (in that order: a crash in
        between leaves the task on TASKS, and the msg id keeps the copy single)."""
        await self._dead_letter(task.id, task.priority, {"type": task.type, "payload": task.payload,
                                                         "max_attempts": task.max_attempts},
                                error, deliveries)
        await msg.ack_sync()
        task.state, task.finished_at = "dead", self.clock()
        await self._event(task, error)

    async def _dead_letter(self, seq: int, priority: str, body: dict[str, Any], error: str,
                           deliveries: int) -> None:
        assert self._js is not None
        entry = {**body, "task_id": seq, "priority": priority, "error": error,
                 "deliveries": deliveries, "dead_at": time.time()}
        await self._js.publish(DLQ_SUBJECT, json.dumps(entry).encode(), stream=DLQ_STREAM,
                               headers={"Nats-Msg-Id": f"dlq-{seq}", "Tasks-Error": error[:500],
                                        "Tasks-Deliveries": str(deliveries)})
        self.last_error.pop(seq, None)
        if seq not in self.dead:
            self.dead.append(seq)

    async def _on_max_deliveries(self, msg: Msg) -> None:
        """The server gave up on a task with no verdict from us: move it to the DLQ."""
        assert self._js is not None
        try:
            advisory = json.loads(msg.data)
            seq, deliveries = int(advisory["stream_seq"]), int(advisory["deliveries"])
            # The bus has no authorization (loopback, like the children themselves; SPEC §6
            # "Security model"): at least drop what the server could never have sent.
            if advisory.get("consumer") not in CONSUMERS or deliveries < self.ai.max_attempts:
                log.warning("ignored a MAX_DELIVERIES advisory that does not fit: %.200s", msg.data)
                return
            raw = await self._js.get_msg(STREAM, seq)
        except APIError as exc:
            if not _missing(exc):
                log.warning("MAX_DELIVERIES advisory: task %s not read: %s", seq, exc)
            return  # already settled (acked or moved)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("MAX_DELIVERIES advisory not understood: %s", exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bad advisory must not stop the loop
            log.warning("MAX_DELIVERIES advisory not handled: %s", exc)
            return
        try:
            body = json.loads(raw.data or b"{}")
        except ValueError:
            body = {"type": "?", "payload": (raw.data or b"").decode(errors="replace")[:1000]}
        priority = (raw.subject or "tasks.normal").rsplit(".", 1)[-1]
        await self._dead_letter(seq, priority, body, self.last_error.get(seq, NO_VERDICT),
                                deliveries)
        await self._js.delete_msg(STREAM, seq)
        task = self.tasks.get(seq)
        if task is not None:
            task.state, task.finished_at = "dead", self.clock()
            await self._event(task, task.errors[-1] if task.errors else NO_VERDICT)

    async def _event(self, task: Task, error: str | None = None) -> None:
        """A small core-NATS event per state change; nobody listening costs nothing."""
        if self._nc is None or self._nc.is_closed:
            return
        event = {"id": task.id, "type": task.type, "priority": task.priority,
                 "state": task.state, "attempts": task.attempts, "error": error,
                 "at": time.time()}
        try:
            await self._nc.publish(f"{EVENTS_PREFIX}.{task.state}", json.dumps(event).encode())
        except Exception as exc:  # noqa: BLE001 - events are best effort
            log.debug("task event not sent: %s", exc)

    # -- the dead-letter queue ----------------------------------------------------------
    async def dead_letters(self, limit: int = 200) -> list[dict[str, Any]]:
        """The entries of TASKS_DLQ, oldest first, each with its ``dlq_seq``."""
        assert self._js is not None
        info = await self._js.stream_info(DLQ_STREAM)
        out: list[dict[str, Any]] = []
        seq = info.state.first_seq
        while info.state.messages and seq <= info.state.last_seq and len(out) < limit:
            try:
                raw = await self._js.get_msg(DLQ_STREAM, seq, subject=DLQ_SUBJECT, next=True)
            except NotFoundError:
                break
            assert raw.seq is not None
            out.append({**_entry(raw.data), "dlq_seq": raw.seq})
            seq = raw.seq + 1
        return out

    async def requeue(self, dlq_seq: int) -> dict[str, Any] | None:
        """Publish the entry as a new task at its priority, then drop it; None if absent."""
        assert self._js is not None
        try:
            raw = await self._js.get_msg(DLQ_STREAM, dlq_seq)
        except APIError as exc:
            if _missing(exc):
                return None
            raise
        entry = _entry(raw.data)
        priority = entry.get("priority") if entry.get("priority") in PRIORITIES else "normal"
        spec = {"type": entry.get("type"), "payload": entry.get("payload"),
                "priority": priority, "max_attempts": entry.get("max_attempts")}
        task = await self._publish_task(spec, requeued_from=entry.get("task_id"))
        await self._js.delete_msg(DLQ_STREAM, dlq_seq)
        return task.to_dict()

    async def drop(self, dlq_seq: int) -> bool:
        assert self._js is not None
        try:
            return bool(await self._js.delete_msg(DLQ_STREAM, dlq_seq))
        except APIError as exc:
            if _missing(exc):
                return False
            raise

    # -- reads ------------------------------------------------------------------------
    def get(self, task_id: int) -> dict[str, Any] | None:
        task = self.tasks.get(task_id)
        return None if task is None else task.to_dict()

    def list(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        chosen = [t for t in self.tasks.values() if state is None or t.state == state]
        return [t.to_dict() for t in sorted(chosen, key=lambda t: -t.id)[:limit]]

    def stats(self) -> dict[str, Any]:
        return {**task_stats(list(self.tasks.values()), len(self.dead), self.bucket.rate), "bus": True}


NO_MESSAGE_CODES = {10037, 10057}  # JSNoMessageFoundErr, as get and delete report it


def _missing(exc: APIError) -> bool:
    return isinstance(exc, NotFoundError) or exc.err_code in NO_MESSAGE_CODES


def _entry(data: bytes | None) -> dict[str, Any]:
    try:
        entry = json.loads(data or b"{}")
    except ValueError:
        return {"error": "unreadable dead-letter entry"}
    return entry if isinstance(entry, dict) else {"error": "unreadable dead-letter entry"}


async def _add_or_update(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except Exception:  # noqa: BLE001 - exists with another config: bring it up to date
        await js.update_stream(config)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass
