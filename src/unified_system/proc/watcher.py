"""File watching (watchdog): per-service `watch` paths, and the config file itself.

The observer thread only posts FileChanged; the owner debounces, so a burst of saves
gives one restart.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from unified_system.core.events import FileChanged


def ignored(path: str, root: Path, patterns: Iterable[str]) -> bool:
    """A glob matches the file name, any directory name on the way, or the relative path."""
    try:
        rel = PurePath(path).relative_to(root)
    except ValueError:
        rel = PurePath(path)
    parts = rel.parts
    for pattern in patterns:
        if any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
        if fnmatch.fnmatch(str(rel), pattern):
            return True
    return False


class _Handler(FileSystemEventHandler):
    def __init__(self, key: str, root: Path, ignore: tuple[str, ...], prefixes: tuple[str, ...],
                 post: Callable[[object], None], only: frozenset[str] = frozenset()) -> None:
        self.key, self.root, self.ignore, self.post, self.only = key, root, ignore, post, only
        self.prefixes = prefixes  # e.g. the state_dir: logs written there must never restart a service

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or (
                event.is_directory and event.event_type == "modified"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else raw
            if not path:
                continue
            if self.only and PurePath(path).name not in self.only:
                continue
            if path.startswith(self.prefixes):
                continue
            if not ignored(path, self.root, self.ignore):
                self.post(FileChanged(self.key, path))
                return


class Watcher:
    def __init__(self, post: Callable[[object], None], always_ignore: Iterable[Path] = ()) -> None:
        self._post = post
        self._observer = Observer()
        self._observer.daemon = True
        self._always = tuple(str(p) for p in always_ignore)
        self._watches: dict[str, list] = {}
        self.started = False

    def watch(self, key: str, paths: Iterable[Path], ignore: Iterable[str]) -> None:
        ignore = tuple(ignore)
        for path in paths:
            root = Path(path)
            if root.is_dir():
                handler = _Handler(key, root, ignore, self._always, self._post)
                self._watches.setdefault(key, []).append(
                    self._observer.schedule(handler, str(root), recursive=True))
            elif root.exists():  # a single file: watch its directory, keep only that name
                handler = _Handler(key, root.parent, ignore, self._always, self._post,
                                   frozenset({root.name}))
                self._watches.setdefault(key, []).append(
                    self._observer.schedule(handler, str(root.parent), recursive=False))
        self._start()

    def unwatch(self, key: str) -> None:
        for watch in self._watches.pop(key, []):
            try:
                self._observer.unschedule(watch)
            except (KeyError, ValueError):
                pass

    def _start(self) -> None:
        if not self.started:
            self._observer.start()
            self.started = True

    def close(self) -> None:
        if self.started:
            self._observer.stop()
            self._observer.join(2)
