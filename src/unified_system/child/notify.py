"""Child-side supervisor protocols: sd_notify, HTTP heartbeat, socket activation.

Stdlib only: child programs import this without the supervisor's dependencies.

- ``notify(**fields)`` / ``notify_raw(text)`` send one sd_notify datagram to
  ``$NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for the Linux abstract namespace).
- ``http_heartbeat()`` POSTs to ``$UNIFIED_HEARTBEAT_URL`` with ``X-Unified-Token``.
- ``listen_sockets()`` implements ``sd_listen_fds``: inherited sockets start at fd 3.

Every sender returns True when the message went out and False otherwise (no socket
configured, or the send failed). They never raise: a supervisor hiccup must never take
the child down with it.
"""

from __future__ import annotations

import os
import socket
import urllib.request

__all__ = [
    "SD_LISTEN_FDS_START",
    "notify",
    "notify_raw",
    "ready",
    "heartbeat",
    "status",
    "stopping",
    "reloading",
    "extend_timeout",
    "trigger_watchdog",
    "watchdog_interval",
    "http_heartbeat",
    "listen_fds",
    "listen_fd_names",
    "listen_sockets",
]

SD_LISTEN_FDS_START = 3
SEND_TIMEOUT = 0.5  # seconds a message may wait for room in the supervisor's queue


def _address(raw: str) -> str | bytes:
    # "@name" is the abstract namespace: a leading NUL byte instead of the '@'.
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def notify_raw(text: str, timeout: float = SEND_TIMEOUT) -> bool:
    """Send ``text`` (``KEY=VALUE`` lines) as one datagram; False if not sent.

    A unix datagram socket whose reader has stalled fills up (about 10 queued messages
    on Linux) and then blocks the sender; ``timeout`` bounds that wait so a stuck
    supervisor can never freeze the child. ``timeout=0`` never waits at all.
    """
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(timeout)
            sock.sendto(text.encode("utf-8"), _address(target))
        return True
    except (OSError, ValueError):  # includes socket.timeout and BlockingIOError
        return False


def notify(**fields: object) -> bool:
    """Send ``KEY=VALUE`` pairs, e.g. ``notify(READY=1, STATUS="warming up")``."""
    if not fields:
        return False
    lines = []
    for key, value in fields.items():
        # Newlines would split one field into two; sd_notify values are single-line.
        text = str(value).replace("\n", " ")
        lines.append(f"{key}={text}")
    return notify_raw("\n".join(lines) + "\n")


def ready(status_text: str | None = None) -> bool:
    if status_text is None:
        return notify(READY=1)
    return notify(READY=1, STATUS=status_text)


def heartbeat() -> bool:
    # Never waits: a heartbeat that cannot be queued now is stale anyway, and the next
    # one follows; a heartbeat loop must not stall on a busy supervisor.
    return notify_raw("WATCHDOG=1\n", timeout=0.0)


def status(text: str) -> bool:
    return notify(STATUS=text)


def stopping() -> bool:
    return notify(STOPPING=1)


def reloading() -> bool:
    return notify(RELOADING=1)


def extend_timeout(seconds: float) -> bool:
    return notify(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))


def trigger_watchdog() -> bool:
    """Ask the supervisor to restart this service (``WATCHDOG=trigger``)."""
    return notify(WATCHDOG="trigger")


def watchdog_interval() -> float | None:
    """Seconds between heartbeats: half of ``$WATCHDOG_USEC`` (as systemd advises)."""
    raw = os.environ.get("WATCHDOG_USEC", "").strip()
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    # WATCHDOG_PID, when set, says whom the watchdog is meant for.
    pid = os.environ.get("WATCHDOG_PID", "").strip()
    if pid and pid != str(os.getpid()):
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


def http_heartbeat(timeout: float = 2.0) -> bool:
    """POST a heartbeat to ``$UNIFIED_HEARTBEAT_URL``; True on a 2xx answer."""
    url = os.environ.get("UNIFIED_HEARTBEAT_URL")
    if not url:
        return False
    headers = {"X-Unified-Token": os.environ.get("UNIFIED_TOKEN", "")}
    request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception:  # noqa: BLE001 - a heartbeat must never raise into the child
        return False


def listen_fds() -> int:
    """How many sockets were passed (``sd_listen_fds``); 0 if they are not for us."""
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return 0
    # LISTEN_PID guards against a grandchild inheriting the variables by accident.
    if pid != os.getpid() or count <= 0:
        return 0
    return count


def listen_fd_names() -> list[str]:
    """Names from ``$LISTEN_FDNAMES`` (colon separated), padded with "unknown"."""
    count = listen_fds()
    names = [n for n in os.environ.get("LISTEN_FDNAMES", "").split(":")] if count else []
    names = [n or "unknown" for n in names[:count]]
    return names + ["unknown"] * (count - len(names))


def listen_sockets() -> list[socket.socket]:
    """Socket objects for fds 3 .. 3+LISTEN_FDS-1 (family/type detected from the fd)."""
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + listen_fds()):
        os.set_inheritable(fd, False)  # like sd_listen_fds: not leaked into our own children
        sockets.append(socket.socket(fileno=fd))
    return sockets
