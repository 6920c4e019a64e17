"""Deterministic local task handlers: same payload in, same result out (no model, no network)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class TaskError(Exception):
    """A handler's deliberate failure."""


def _text(payload: Any) -> str:
    if isinstance(payload, dict):
        return str(payload.get("text", ""))
    return "" if payload is None else str(payload)


def echo(payload: Any) -> Any:
    return payload


def summarize(payload: Any) -> dict[str, Any]:
    """First sentence, cut to ``max_words`` (default 20) words."""
    text = _text(payload).strip()
    limit = int(payload.get("max_words", 20)) if isinstance(payload, dict) else 20
    words = text.split()
    first = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0] if text else ""
    summary_words = first.split()[:limit]
    return {"summary": " ".join(summary_words), "words": len(words)}


_POSITIVE = {"good", "great", "excellent", "profit", "gain", "up", "win", "happy", "love"}
_NEGATIVE = {"bad", "poor", "terrible", "loss", "down", "lose", "sad", "hate", "crash"}


def classify(payload: Any) -> dict[str, Any]:
    """Keyword sentiment: positive / negative / neutral with the matched counts."""
    words = re.findall(r"[a-z']+", _text(payload).lower())
    pos = sum(w in _POSITIVE for w in words)
    neg = sum(w in _NEGATIVE for w in words)
    label = "positive" if pos > neg else "negative" if neg > pos else "neutral"
    return {"label": label, "positive": pos, "negative": neg}


def fail(payload: Any) -> Any:
    """Always fails: exercises retries, backoff and the dead-letter list."""
    raise TaskError("task type 'fail' always fails")


HANDLERS: dict[str, Callable[[Any], Any]] = {
    "echo": echo,
    "summarize": summarize,
    "classify": classify,
    "fail": fail,
}
