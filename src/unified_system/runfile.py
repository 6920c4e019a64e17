"""The runtime file: where the supervisor of a config listens, found by a client without YAML.

A client command (status, logs, start, ...) needs only the address and the key. Reading them
from services.yaml costs PyYAML and the interpolation (~50 ms of a ~150 ms budget), so the
running supervisor writes them, once its API listens, to a small JSON file named after the
config's absolute path, in a private runtime directory ($XDG_RUNTIME_DIR/unified-system, else
/tmp/unified-system-$UID, 0700). It never holds the key: the client reads that from
<state_dir>/api_key as before, and when the config itself sets the key it falls back to the
config. The client trusts the file only if everything still matches (same pid and process
start time, the same services.yaml and .env bytes on disk by mtime/size/inode, the same
environment); anything else, garbage included, means "not known": the caller reads the config.
Standard library only, and only what a client command imports anyway (os, json).
"""

from __future__ import annotations

import json
import os
import stat

TYPE_CHECKING = False   # typing itself costs a client ~15 ms to import; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

VERSION = 1
MAX_BYTES = 4096      # a real file is ~500 bytes; a larger one is not ours
KEY_FILE = "api_key"  # the key's file in the state dir: api/auth.py writes it, clients read it


class Found:
    """Where the supervisor listens and its key (a plain class: dataclasses imports inspect)."""

    __slots__ = ("host", "port", "api_key", "pid")

    def __init__(self, host: str, port: int, api_key: str | None, pid: int) -> None:
        self.host, self.port, self.api_key, self.pid = host, port, api_key, pid


def runtime_dir(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    xdg = environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "unified-system")
    return os.path.join(environ.get("TMPDIR") or "/tmp", f"unified-system-{os.getuid()}")


def file_for(config_path: str, environ: Mapping[str, str] | None = None) -> str:
    """The file of the supervisor of this config (an absolute path)."""
    # FNV-1a, not hashlib (~4 ms to import, and OpenSSL resident in the supervisor). Not a
    # trust boundary: the file names its config, and a file naming another one is not used.
    digest = 0xCBF29CE484222325
    for byte in os.fsencode(config_path):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(runtime_dir(environ), f"{digest:016x}.json")


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (/proc/PID/stat field 22): a pid reused by
    another process has another."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _private_dir(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


# --------------------------------------------------------------------------- supervisor side
def publish(config_path: str, env_name: str | None, node_env: str | None, host: str, port: int,
            state_dir: str, key_in_config: bool) -> str | None:
    """Write the file atomically (0600, in the 0700 directory); its path, or None when the
    directory is not private to us (then clients read the config, as without the file)."""
    target = file_for(config_path)
    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not _private_dir(folder):
        return None
    base = os.path.dirname(config_path)
    dotenv = os.path.join(base, ".env")
    record = {
        "version": VERSION, "pid": os.getpid(), "start_time": start_time(os.getpid()),
        "host": host, "port": port, "config": config_path, "config_stamp": _stamp(config_path),
        "dotenv_stamp": _stamp(dotenv), "env": env_name, "node_env": node_env,
        # .env's own NODE_ENV, for a client whose shell has none: known only when this
        # process's shell had none either (reading .env again would keep dotenv resident).
        "dotenv_node_env": None if "NODE_ENV" in os.environ else node_env,
        "dotenv_node_env_known": "NODE_ENV" not in os.environ, "state_dir": state_dir,
        "key": "config" if key_in_config else "file",
    }
    part = f"{target}.{os.getpid()}.part"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(part, target)
    except OSError:
        try:
            os.unlink(part)
        except OSError:
            pass
        return None
    return target


def withdraw(path: str) -> None:
    """At a clean shutdown: remove the file if it is still ours (a later supervisor of the
    same config may have replaced it)."""
    # Read as a client reads it (no link followed, no FIFO waited on, bounded, any garbage
    # is "not ours"): whatever was planted there must not fail or hang the shutdown.
    record = _read(path)
    mine = record is not None and record["pid"] == os.getpid()
    if mine:
        try:
            os.unlink(path)
        except OSError:
            pass


# --------------------------------------------------------------------------- client side
def find(config_path: str, env_name: str | None,
         environ: Mapping[str, str] | None = None) -> Found | None:
    """The running supervisor of this config, if its file is present and still true; None
    sends the caller to the config."""
    environ = os.environ if environ is None else environ
    record = _read(file_for(config_path, environ))
    if record is None or not _current(record, config_path, env_name, environ):
        return None
    host, port = record["host"], record["port"]
    if record["key"] != "file":
        return None   # the key is the config's: only the config can say it
    try:
        with open(os.path.join(record["state_dir"], KEY_FILE), encoding="utf-8") as fh:
            key = fh.read(MAX_BYTES).strip() or None
    except (OSError, ValueError):
        key = None
    return Found(host, port, key, record["pid"])


def _read(path: str) -> dict[str, Any] | None:
    if not _private_dir(os.path.dirname(path)):
        return None
    try:
        # NOFOLLOW: a link (to /dev/zero, to another user's file) is refused; NONBLOCK: a FIFO
        # planted there does not hang the client.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_size > MAX_BYTES:
            return None
        data = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return record if _well_formed(record) else None


_TYPES: dict[str, tuple[type, ...]] = {
    "version": (int,), "pid": (int,), "start_time": (int,), "host": (str,), "port": (int,),
    "config": (str,), "config_stamp": (list,), "dotenv_stamp": (list, type(None)),
    "env": (str, type(None)), "node_env": (str, type(None)),
    "dotenv_node_env": (str, type(None)), "dotenv_node_env_known": (bool,), "state_dir": (str,),
    "key": (str,),
}


def _well_formed(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    for name, types in _TYPES.items():
        value = record.get(name, ...)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return False
    return (record["version"] == VERSION and record["pid"] > 0 and 1 <= record["port"] <= 65535
            and bool(record["host"]) and "\r" not in record["host"]
            and "\n" not in record["host"] and os.path.isabs(record["state_dir"]))


def _current(record: dict[str, Any], config_path: str, env_name: str | None,
             environ: Mapping[str, str]) -> bool:
    if record["config"] != config_path or start_time(record["pid"]) != record["start_time"]:
        return False
    dotenv = os.path.join(os.path.dirname(config_path), ".env")
    if record["config_stamp"] != _stamp(config_path) or record["dotenv_stamp"] != _stamp(dotenv):
        return False   # edited since the supervisor read it: the config says what a client means
    if env_name is not None:
        return bool(record["env"] == env_name)
    # No --env: the overlay is NODE_ENV's, as the supervisor saw it (the shell, else .env).
    if "NODE_ENV" not in environ and not record["dotenv_node_env_known"]:
        return False
    node_env = environ.get("NODE_ENV", record["dotenv_node_env"])
    return bool(node_env == record["node_env"]
                and (record["env"] is None or record["env"] == record["node_env"]))
