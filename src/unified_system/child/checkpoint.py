"""Durable, generation-numbered checkpoints in ``$CHECKPOINT_DIR`` (stdlib only).

Format (shared with the Node helper in services/node-server; see docs/ARCHITECTURE.md):

One file per generation, ``checkpoint-<generation as 12 digits>.json``, holding one JSON
object::

    {"format": 1, "generation": 7, "saved_at": "2026-11-23T15:40:00.123Z",
     "sha256": "<hex sha256 of the canonical JSON of data>", "data": {...}}

Canonical JSON is ``json.dumps(data, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8. ``saved_at`` is UTC with millisecond precision.

``save(data)`` writes ``.checkpoint-<gen>.tmp``, fsyncs it, renames it into place, fsyncs
the directory (so the rename itself survives a power cut), then deletes generations
beyond ``keep`` (``$CHECKPOINT_KEEP``, default 3). A crash at any point leaves either the
old newest generation or the new one, never a half-written file under a final name.

``load()`` reads generations newest first and returns the ``data`` of the first one that
parses and whose sha256 matches; ``None`` when there is none. Keeping several generations
is what makes a corrupt or truncated newest file (a disk error, a copy gone wrong) cost
one step of progress instead of all of it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "DEFAULT_KEEP", "Checkpoint", "canonical_json", "save", "load"]

FORMAT = 1
DEFAULT_KEEP = 3
_NAME = re.compile(r"^checkpoint-(\d{12})\.json$")


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _now_iso() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoint:
    """Checkpoints of one service in one directory."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, keep: int | None = None):
        if directory is None:
            directory = os.environ.get("CHECKPOINT_DIR") or None
        if directory is None:
            raise RuntimeError("no checkpoint directory: pass one or set CHECKPOINT_DIR")
        if keep is None:
            try:
                keep = int(os.environ.get("CHECKPOINT_KEEP", DEFAULT_KEEP))
            except ValueError:
                keep = DEFAULT_KEEP
        self.directory = Path(directory)
        self.keep = max(1, keep)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, generation: int) -> Path:
        return self.directory / f"checkpoint-{generation:012d}.json"

    def generations(self) -> list[int]:
        """Generation numbers present on disk, oldest first (valid or not)."""
        found = []
        for name in os.listdir(self.directory):
            match = _NAME.match(name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def save(self, data: Any) -> int:
        """Write ``data`` as the next generation and return its number."""
        existing = self.generations()
        generation = (existing[-1] + 1) if existing else 1
        payload = canonical_json(data)
        record = {
            "format": FORMAT,
            "generation": generation,
            "saved_at": _now_iso(),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "data": data,
        }
        body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        tmp = self.directory / f".checkpoint-{generation:012d}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path_for(generation))
        _fsync_dir(self.directory)
        self._prune(existing + [generation])
        return generation

    def _prune(self, generations: list[int]) -> None:
        for old in sorted(generations)[: -self.keep]:
            try:
                self.path_for(old).unlink()
            except FileNotFoundError:
                pass
        # Temp files left by a save that crashed before its rename are garbage.
        for name in os.listdir(self.directory):
            if name.startswith(".checkpoint-") and name.endswith(".tmp"):
                try:
                    if int(name[len(".checkpoint-"):-len(".tmp")]) < max(generations):
                        (self.directory / name).unlink()
                except (ValueError, FileNotFoundError):
                    pass

    def read(self, generation: int) -> Any:
        """The data of one generation; raises ValueError when it is not valid."""
        try:
            record = json.loads(self.path_for(generation).read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"generation {generation}: unreadable: {exc}") from exc
        if not isinstance(record, dict) or record.get("format") != FORMAT or "data" not in record:
            raise ValueError(f"generation {generation}: not a format-{FORMAT} checkpoint")
        digest = hashlib.sha256(canonical_json(record["data"])).hexdigest()
        if digest != record.get("sha256"):
            raise ValueError(f"generation {generation}: sha256 mismatch")
        return record["data"]

    def load(self) -> Any:
        """The newest valid generation's data, or None."""
        for generation in reversed(self.generations()):
            try:
                return self.read(generation)
            except ValueError:
                continue
        return None

    def latest_valid_generation(self) -> int | None:
        for generation in reversed(self.generations()):
            try:
                self.read(generation)
                return generation
            except ValueError:
                continue
        return None


def save(data: Any) -> int:
    """Save into ``$CHECKPOINT_DIR``."""
    return Checkpoint().save(data)


def load() -> Any:
    """Load from ``$CHECKPOINT_DIR``; None when unset or empty."""
    if not os.environ.get("CHECKPOINT_DIR"):
        return None
    return Checkpoint().load()
