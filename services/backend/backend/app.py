"""The FastAPI application: health, status, the trades ledger and the AI task queue."""

from __future__ import annotations

import asyncio
import gc
import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from . import __version__
from .ai_manager import AIManager, Worker
from .bus_routes import bus_tasks_router
from .busthread import BusThread
from .fills_consumer import FillsConsumer
from .settings import Settings
from .taskbus import BusTasks
from .trades import TradeStore

AI_DISABLED = "AI task processing is disabled (set AI_ENABLED=true to enable /api/tasks)"


# Bounds well past any paper trade, so that one forged number cannot swamp the summary.
MAX_QUANTITY = 1e9
MAX_PRICE = 1e9
MAX_PNL = 1e12


class FillIn(BaseModel):
    fill_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")
    symbol: str = Field(default="SIM", min_length=1, max_length=32)
    side: Literal["buy", "sell"]
    quantity: float = Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False)
    price: float = Field(gt=0, le=MAX_PRICE, allow_inf_nan=False)
    realized_pnl: float | None = Field(default=None, ge=-MAX_PNL, le=MAX_PNL, allow_inf_nan=False)
    tick: int | None = Field(default=None, ge=0, le=2**53)
    source: str | None = Field(default=None, max_length=64)
    filled_at: str | None = Field(default=None, max_length=64)


class TaskIn(BaseModel):
    type: str
    payload: Any = None
    priority: Literal["high", "normal", "low"] = "normal"
    max_attempts: int | None = Field(default=None, ge=1, le=20)


class TaskBatchIn(BaseModel):
    tasks: list[TaskIn] = Field(min_length=1, max_length=1000)


def writer_auth(token: str | None, also: str | None = None) -> Callable[[str | None], None]:
    """A dependency for every mutating route: `Authorization: Bearer <LEDGER_TOKEN>`.

    The gateway is public and forwards /api/* here, so a write must prove it comes from the
    bot (the supervisor hands LEDGER_TOKEN to both). Without a token configured, nobody writes.
    """
    def check(authorization: str | None = Header(default=None)) -> None:
        if not authorization:
            raise HTTPException(status_code=401, detail="send Authorization: Bearer <LEDGER_TOKEN>",
                                headers={"WWW-Authenticate": "Bearer"})
        scheme, _, given = authorization.partition(" ")
        good = [t.encode() for t in (token, also) if t]
        # compare_digest with each, not any(): the time taken says nothing of which.
        matches = [hmac.compare_digest(given.strip().encode(), t) for t in good]
        if not good or scheme.lower() != "bearer" or not any(matches):
            raise HTTPException(status_code=403, detail="this token may not write here")
    return check


def _tasks_router(manager: AIManager, writer: Callable[[str | None], None]) -> APIRouter:
    router = APIRouter(prefix="/api/tasks")

    def submit(specs: list[TaskIn]) -> list[dict[str, Any]]:
        try:
            tasks = manager.submit_many([s.model_dump() for s in specs])
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return [t.to_dict() for t in tasks]

    @router.post("", status_code=201, dependencies=[Depends(writer)])
    def create_task(spec: TaskIn) -> dict[str, Any]:
        return submit([spec])[0]

    @router.post("/batch", status_code=201, dependencies=[Depends(writer)])
    def create_batch(batch: TaskBatchIn) -> dict[str, Any]:
        # One atomic enqueue, so the worker sees the whole batch in priority order.
        return {"tasks": submit(batch.tasks)}

    @router.get("")
    def list_tasks(state: str | None = None, limit: int = Query(100, ge=1, le=10000)):
        return {"tasks": manager.list(state=state, limit=limit)}

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        return manager.stats()

    @router.get("/dead-letter")
    def dead_letter() -> dict[str, Any]:
        return {"tasks": manager.dead_letters()}

    @router.get("/{task_id}")
    def get_task(task_id: int) -> dict[str, Any]:
        task = manager.get(task_id)
        if task is None:
            raise HTTPException(status_code=404, detail=f"no task {task_id}")
        return task

    return router


def _disabled_router() -> APIRouter:
    router = APIRouter()

    @router.api_route("/api/tasks", methods=["GET", "POST"])
    @router.api_route("/api/tasks/{rest:path}", methods=["GET", "POST"])
    def disabled(rest: str = "") -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": AI_DISABLED, "ai_enabled": False})

    return router


def create_app(settings: Settings) -> FastAPI:
    started = time.monotonic()
    store = TradeStore(settings.db_path)
    manager: AIManager | None = None
    # With NATS_URL the task queue lives on JetStream (taskbus.py) and the trade summary is
    # also answered by request/reply; without it, the in-memory queue as before.
    bus_tasks = BusTasks(settings.ai) if settings.nats_url and settings.ai_enabled else None
    bus = BusThread(settings.nats_url, store.summary, bus_tasks) if settings.nats_url else None
    if settings.ai_enabled and bus_tasks is None:
        a = settings.ai
        manager = AIManager(a.rate_limit, a.burst, a.max_attempts,
                            a.backoff_initial, a.backoff_multiplier, a.backoff_max)

    consumer = FillsConsumer(settings.nats_url, store, FillIn.model_validate_json) \
        if settings.nats_url else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(manager) if manager else None
        if worker:
            worker.start()
        if bus:
            bus.start()
        # Fills from the bus (fills_consumer.py), on a thread and event loop of their own.
        if consumer:
            consumer.start()
        # Start-up's objects (modules, models, routes: ~56,000) are never freed; a full
        # collection scanned them all, 30-40 ms with the GIL held, stalling every thread.
        gc.freeze()
        try:
            yield
        finally:
            if consumer:
                await asyncio.to_thread(consumer.stop)
            if worker:
                worker.stop()
            if bus:
                bus.stop()
            store.close()

    app = FastAPI(title="unified-system backend", version=__version__, lifespan=lifespan)
    app.state.store, app.state.ai, app.state.fills = store, manager, consumer
    writer = writer_auth(settings.ledger_token)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "service": "backend", "version": __version__,
                "uptime_seconds": round(time.monotonic() - started, 3)}

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return {
            "service": "backend",
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - started, 3),
            "ai_enabled": manager is not None or bus_tasks is not None,
            "bus": None if bus is None else {"connected": bus.connected.is_set()},
            "counts": {
                "trades": store.count(),
                "tasks": manager.stats()["by_state"] if manager else None,
            },
        }

    @app.post("/api/trades", status_code=201, dependencies=[Depends(writer)])
    def record_trade(fill: FillIn, response: Response) -> dict[str, Any]:
        row, created = store.record(fill.model_dump())
        if not created:
            response.status_code = 200  # a repeat of a known fill_id: idempotent
        return row

    @app.get("/api/trades")
    def list_trades(limit: int = Query(50, ge=1, le=10000)) -> dict[str, Any]:
        return {"trades": store.list(limit)}

    @app.get("/api/trades/summary")
    def trades_summary() -> dict[str, Any]:
        return store.summary()

    if bus is not None and bus_tasks is not None:
        # The dead-letter buttons' token (TASKS_TOKEN, the gateway's) may do only that.
        dlq_writer = writer_auth(settings.tasks_token, also=settings.ledger_token)
        app.include_router(bus_tasks_router(bus, bus_tasks, writer, dlq_writer, TaskIn, TaskBatchIn))
    else:
        app.include_router(_tasks_router(manager, writer) if manager else _disabled_router())
    return app
