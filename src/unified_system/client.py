"""The CLI's side of the control API: status, start/stop/restart, reload, logs.

A raw-socket HTTP/1.1 client (rawhttp.py): a client command is short-lived, and importing an
HTTP library (even http.client, which loads `email`) costs it more than its whole exchange
with the supervisor. Nothing here imports typing, for the same reason."""

from __future__ import annotations

import json
import sys
import time

from unified_system.rawhttp import Closed, Connection, ProtocolError

TYPE_CHECKING = False   # typing costs a client ~15 ms to import; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TextIO

EXIT_OK, EXIT_FAIL, EXIT_NOT_RUNNING = 0, 1, 3
FOLLOW_PERIOD = 0.5
FOLLOW_WINDOW = 1000
RELOAD_TIMEOUT = 310.0    # the server waits up to 300 s for changed services to come up
NETWORK_ERRORS = (OSError, ProtocolError)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "/") -> str:
    """urllib.parse.quote (which costs ~5 ms to import) for our paths and query values."""
    keep = _SAFE | frozenset(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def urlencode(params: Mapping[str, Any]) -> str:
    return "&".join(f"{quote(str(k), '')}={quote(str(v), '')}" for k, v in params.items())


class NotRunning(Exception):
    pass


def base_url(host: str, port: int) -> str:
    host = _reachable(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _reachable(host: str) -> str:
    # A wildcard bind is reached over loopback.
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


class Response:
    def __init__(self, status_code: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.content = body
        self.headers = headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """One keep-alive connection to the control API (no proxy is ever consulted, so the
    key of a loopback API cannot be handed to an HTTP_PROXY)."""

    def __init__(self, host: str, port: int, api_key: str | None, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = _reachable(host), port, timeout
        self.where = f"{host}:{port}"
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self._conn: Connection | None = None

    @classmethod
    def from_config(cls, loaded: Any) -> Client:
        from unified_system.api.auth import read_key

        cfg = loaded.config.supervisor
        return cls(cfg.host, cfg.port, cfg.api_key or read_key(cfg.state_dir))

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Response:
        target = quote(path, safe="/%") + (f"?{urlencode(params)}" if params else "")
        for attempt in (1, 2):   # a kept-alive connection the server closed is tried once more
            reused = self._conn is not None
            if self._conn is None:
                self._conn = Connection(self.host, self.port)
            try:
                answer = self._conn.request(method, target, self.headers, timeout or self.timeout)
            except ConnectionRefusedError:
                self.close()
                raise NotRunning(f"no supervisor is running at {self.where}") from None
            except (Closed, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2 or not reused:
                    raise
                continue
            except NETWORK_ERRORS:
                self.close()
                raise
            if answer.will_close:
                self.close()
            return Response(answer.status, answer.body, answer.headers)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def error_of(response: Response) -> str:
    try:
        return str(response.json().get("error") or response.text)
    except (ValueError, AttributeError):
        return response.text.strip() or f"HTTP {response.status_code}"


# --------------------------------------------------------------------------- formatting
def _uptime(seconds: float | None) -> str:
    if not seconds:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _memory(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _last_exit(last: dict[str, Any] | None) -> str:
    if not last:
        return "-"
    how = last.get("signal") or (f"code {last['code']}" if last.get("code") is not None else "?")
    return f"{last.get('reason') or '?'} ({how})"


def table(services: list[dict[str, Any]]) -> str:
    head = ("NAME", "STATE", "READY", "HEALTH", "PID", "UPTIME", "RESTARTS", "MEMORY", "LAST EXIT")
    rows = [head] + [(
        s["name"], s["state"], "yes" if s.get("ready") else "no", str(s.get("health") or "-"),
        str(s["pid"]) if s.get("pid") else "-", _uptime(s.get("uptime_seconds")),
        str(s.get("restarts", 0)), _memory(s.get("memory_rss_bytes")), _last_exit(s.get("last_exit")),
    ) for s in services]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


# --------------------------------------------------------------------------- commands
def run_command(client: Client, command: str, name: str, as_json: bool, lines: int,
                follow: bool) -> int:
    """One client command (cli.CLIENT_COMMANDS) over `client`: the quick path's and cli's."""
    if command == "status":
        return status(client, as_json)
    if command == "reload":
        return reload(client)
    if command == "logs":
        return logs(client, name, lines, follow)
    return action(client, command, name)


def _guard(fn: Callable[[], int], err: TextIO, not_running: int = EXIT_FAIL) -> int:
    """SPEC §5: `status` exits 3 when no supervisor runs; every other command 1."""
    try:
        return fn()
    except NotRunning as exc:
        print(str(exc), file=err)
        return not_running
    except NETWORK_ERRORS as exc:
        print(f"control API error: {exc or type(exc).__name__}", file=err)
        return EXIT_FAIL
    except ValueError as exc:   # a body that is not JSON: never a traceback
        print(f"control API error: the answer is not JSON ({exc})", file=err)
        return EXIT_FAIL


def status(client: Client, as_json: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    def run() -> int:
        response = client.request("GET", "/api/services")
        if response.status_code != 200:
            print(f"status failed: {error_of(response)}", file=err)
            return EXIT_FAIL
        services = response.json()
        print(json.dumps(services, indent=2) if as_json else table(services), file=out)
        return EXIT_OK
    return _guard(run, err, EXIT_NOT_RUNNING)


def action(client: Client, verb: str, name: str, out: TextIO = sys.stdout,
           err: TextIO = sys.stderr) -> int:
    def run() -> int:
        response = client.request("POST", f"/api/services/{_segment(name)}/{verb}")
        if response.status_code == 202:
            print(f"{verb} {name}: accepted ({response.json().get('state')})", file=out)
            return EXIT_OK
        print(f"{verb} {name} failed: {error_of(response)}", file=err)
        return EXIT_FAIL
    return _guard(run, err)


def reload(client: Client, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    def run() -> int:
        response = client.request("POST", "/api/reload", timeout=RELOAD_TIMEOUT)
        if response.status_code == 200:
            diff = response.json()
            for key in ("added", "removed", "changed", "unchanged"):
                print(f"{key}: {', '.join(diff.get(key) or []) or '-'}", file=out)
            rolled_back = diff.get("rolled_back") or {}
            for name, why in rolled_back.items():
                print(f"rolled back {name}: {why}", file=err)
            return EXIT_FAIL if rolled_back else EXIT_OK
        if response.status_code == 501:
            print("reload failed: this supervisor cannot reload its config yet "
                  f"({error_of(response)})", file=err)
            return EXIT_FAIL
        print(f"reload failed: {error_of(response)}", file=err)
        for line in _json(response).get("errors") or []:
            print(f"  {line}", file=err)
        return EXIT_FAIL
    return _guard(run, err)


def logs(client: Client, name: str, lines: int, follow: bool, out: TextIO = sys.stdout,
         err: TextIO = sys.stderr, period: float = FOLLOW_PERIOD) -> int:
    path = f"/api/services/{_segment(name)}/logs"

    def fetch(n: int) -> list[str] | None:
        response = client.request("GET", path, params={"lines": n})
        if response.status_code != 200:
            print(f"logs {name} failed: {error_of(response)}", file=err)
            return None
        return list(response.json().get("lines") or [])

    def run() -> int:
        seen = fetch(max(lines, FOLLOW_WINDOW) if follow else lines)
        if seen is None:
            return EXIT_FAIL
        for line in seen[-lines:] if lines else []:
            print(line, file=out)
        out.flush()
        try:
            while follow:
                time.sleep(period)   # polling is the protocol here: the API has no log stream
                current = fetch(FOLLOW_WINDOW)
                if current is None:
                    return EXIT_FAIL
                for line in new_lines(seen, current):
                    print(line, file=out)
                out.flush()
                seen = current
        except KeyboardInterrupt:
            pass
        return EXIT_OK
    return _guard(run, err)


def new_lines(previous: list[str], current: list[str]) -> list[str]:
    """What `current` (a later tail window) adds after `previous`: the longest suffix of
    previous that is a prefix of current marks where the new lines begin."""
    for start in range(len(previous)):
        overlap = previous[start:]
        if current[:len(overlap)] == overlap:
            return current[len(overlap):]
    return current   # no overlap: rotated, or more than a window arrived


def _segment(name: str) -> str:
    return quote(name, safe="")


def _json(response: Response) -> dict[str, Any]:
    try:
        value = response.json()
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}
