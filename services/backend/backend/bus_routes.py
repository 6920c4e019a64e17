"""/api/tasks when the task queue lives on the bus (NATS_URL set): the same routes as the
in-memory queue, plus the dead-letter queue's re-queue and drop (keyed like every write)."""

# No `from __future__ import annotations`: the body models are parameters of the factory,
# and FastAPI must see the classes themselves, not their names.
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel

from .busthread import BusThread
from .taskbus import BusTasks

T = TypeVar("T")
MAX_SEQ = 2**63 - 1  # a stream sequence is a uint64; anything larger names nothing


def bus_tasks_router(bus: BusThread, tasks: BusTasks, writer: Callable[..., None],
                     dlq_writer: Callable[..., None], task_in: type[BaseModel], batch_in: type[BaseModel]) -> APIRouter:
    router = APIRouter(prefix="/api/tasks")

    def on_bus(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if not bus.connected.is_set():
            raise HTTPException(status_code=503, detail="the message bus is not connected yet")
        try:
            return bus.call(make())
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise HTTPException(status_code=503, detail=f"the message bus did not answer: {exc}") from exc

    async def read(fn: Callable[[], T]) -> T:
        return fn()  # runs on the bus loop, which owns the records

    def submit(specs: list[Any]) -> list[dict[str, Any]]:
        try:
            for spec in specs:
                tasks.validate(spec.type, spec.priority)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        made = on_bus(lambda: tasks.submit_many([s.model_dump() for s in specs]))
        return [t.to_dict() for t in made]

    @router.post("", status_code=201, dependencies=[Depends(writer)])
    def create_task(spec: task_in) -> dict[str, Any]:  # type: ignore[valid-type]
        return submit([spec])[0]

    @router.post("/batch", status_code=201, dependencies=[Depends(writer)])
    def create_batch(batch: batch_in) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"tasks": submit(batch.tasks)}  # type: ignore[attr-defined]

    @router.get("")
    def list_tasks(state: str | None = None,
                   limit: int = Query(100, ge=1, le=10000)) -> dict[str, Any]:
        return {"tasks": on_bus(lambda: read(lambda: tasks.list(state=state, limit=limit)))}

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        return on_bus(lambda: read(tasks.stats))

    @router.get("/dead-letter")
    def dead_letter(limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
        return {"tasks": on_bus(lambda: tasks.dead_letters(limit))}

    @router.post("/dead-letter/{dlq_seq}/requeue", status_code=201,
                 dependencies=[Depends(dlq_writer)])
    def requeue(dlq_seq: int = Path(ge=1, le=MAX_SEQ)) -> dict[str, Any]:
        task = on_bus(lambda: tasks.requeue(dlq_seq))
        if task is None:
            raise HTTPException(status_code=404, detail=f"no dead-letter entry {dlq_seq}")
        return {"task": task, "requeued_from": dlq_seq}

    @router.delete("/dead-letter/{dlq_seq}", status_code=204, dependencies=[Depends(dlq_writer)])
    def drop(dlq_seq: int = Path(ge=1, le=MAX_SEQ)) -> Response:
        if not on_bus(lambda: tasks.drop(dlq_seq)):
            raise HTTPException(status_code=404, detail=f"no dead-letter entry {dlq_seq}")
        return Response(status_code=204)

    @router.get("/{task_id}")
    def get_task(task_id: int = Path(ge=1, le=MAX_SEQ)) -> dict[str, Any]:
        task = on_bus(lambda: read(lambda: tasks.get(task_id)))
        if task is None:
            raise HTTPException(status_code=404, detail=f"no task {task_id}")
        return task

    return router
