"""Issue 20 part 4, a quick command line: the runtime file a running supervisor writes
(runfile.py), the quick path of client commands (quick.py) and its raw-socket HTTP client
(rawhttp.py), against a real supervisor; every way the file can be missing, stale or forged
falls back to reading the config, and never crashes the client."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness import CHILDREN, PY, START, SupervisorProcess, wait_until
from unified_system import quick, runfile
from unified_system.client import Client, status

CONFIG = """
    services:
      web: {command: ["{py}", "{children}/sleeper.py"]}
      chatty: {command: ["{py}", "{children}/chatty.py"]}
"""


def private_runtime(tmp_path: Path) -> dict[str, str]:
    """Each test its own runtime directory: the files of other tests are not in the way."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    return {"XDG_RUNTIME_DIR": str(xdg)}


def cli(sup: SupervisorProcess, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -X importtime start_system.py ARGS -c CONFIG`: stderr lists what it imported."""
    return subprocess.run([PY, "-X", "importtime", str(START), *args, "-c", str(sup.config_path)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**sup.env, **(env or {})}, cwd=sup.dir)


def imported(done: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line} - {"package"}


def messages(done: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(ln for ln in done.stderr.splitlines() if not ln.startswith("import time:"))


def quick_path(done: subprocess.CompletedProcess[str]) -> bool:
    return "yaml" not in imported(done)


@pytest.fixture
def sup(tmp_path):
    with SupervisorProcess(tmp_path, CONFIG, env=private_runtime(tmp_path)) as s:
        s.wait_api(30)
        s.wait_state("web", "running", 30)
        wait_until(lambda: runfile.find(str(s.config_path), None, s.env), 30, "the runtime file")
        yield s
        assert s.stop() == 0


def the_file(sup: SupervisorProcess) -> Path:
    return Path(runfile.file_for(str(sup.config_path), sup.env))


def assert_status_ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, messages(done)
    assert "Traceback" not in done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[1:]}
    assert rows.get("web") == "running", done.stdout


# --------------------------------------------------------------------------- the quick path
def test_quick_path_status_logs_start_stop(sup):
    record = json.loads(the_file(sup).read_text())
    assert record["pid"] == sup.proc.pid and record["key"] == "file"
    assert "key" not in json.dumps({k: v for k, v in record.items() if k != "key"}).lower()
    assert sup.api_key() not in the_file(sup).read_text()   # never the key itself
    assert the_file(sup).stat().st_mode & 0o777 == 0o600
    assert the_file(sup).parent.stat().st_mode & 0o777 == 0o700

    done = cli(sup, "status")
    assert_status_ok(done)
    assert quick_path(done), sorted(imported(done))

    done = cli(sup, "status", "--json")
    assert done.returncode == 0 and quick_path(done), messages(done)
    assert {s["name"] for s in json.loads(done.stdout)} == {"web", "chatty"}

    done = cli(sup, "stop", "web")
    assert done.returncode == 0 and quick_path(done), messages(done)
    assert "stop web: accepted" in done.stdout
    sup.wait_state("web", "stopped", 30)
    done = cli(sup, "start", "web")
    assert done.returncode == 0 and quick_path(done), messages(done)
    sup.wait_state("web", "running", 30, count=2)

    done = cli(sup, "stop", "nope")
    assert done.returncode == 1 and quick_path(done)
    assert "stop nope failed" in messages(done)

    wait_until(lambda: cli(sup, "logs", "chatty", "-n", "3").stdout.count("\n") == 3, 30,
               "three lines of chatty")
    done = cli(sup, "logs", "chatty", "-n", "3")
    assert done.returncode == 0 and quick_path(done), messages(done)


def test_logs_follow_prints_the_first_line_then_stops_on_sigint(sup):
    wait_until(lambda: cli(sup, "logs", "chatty", "-n", "1").stdout.strip(), 30, "a chatty line")
    follow = subprocess.Popen([PY, str(START), "logs", "chatty", "-n", "1", "-f",
                               "-c", str(sup.config_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=sup.env)
    try:
        first = follow.stdout.readline()
        assert first.strip(), follow.stderr.read() if follow.poll() is not None else "no line"
        assert follow.poll() is None
        assert cli(sup, "restart", "chatty").returncode == 0   # new lines: it keeps following
        assert "fill 0 " in follow.stdout.readline()
    finally:
        follow.send_signal(signal.SIGINT)
        assert follow.wait(30) == 0


def test_runtime_file_removed_at_clean_shutdown(tmp_path):
    with SupervisorProcess(tmp_path, CONFIG, env=private_runtime(tmp_path)) as s:
        s.wait_api(30)
        path = Path(runfile.file_for(str(s.config_path), s.env))
        wait_until(path.exists, 30, "the runtime file")
        assert s.stop() == 0
        assert not path.exists()
        assert list(path.parent.iterdir()) == []   # no part file left either


def test_no_supervisor_after_a_kill_exits_3(tmp_path):
    """SIGKILL leaves the file behind: its pid is gone, so it is not believed."""
    with SupervisorProcess(tmp_path, CONFIG, env=private_runtime(tmp_path)) as s:
        s.wait_api(30)
        path = Path(runfile.file_for(str(s.config_path), s.env))
        wait_until(path.exists, 30, "the runtime file")
        s.proc.kill()
        s.proc.wait(30)
        wait_until(lambda: runfile.find(str(s.config_path), None, s.env) is None, 30,
                   "the dead supervisor's file refused")
        done = cli(s, "status")
        assert done.returncode == 3, messages(done)
        assert "no supervisor is running" in messages(done)
        # its services die with it (the guard): waited for, so that none outlives the test
        wait_until(lambda: not _live_descendants(), 30, "the guard to stop the services",
                   seen=_live_descendants)


def _live_descendants() -> list[int]:
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            pass
    return out


# --------------------------------------------------------------------------- the fallbacks
def test_fallback_when_the_file_is_missing(sup):
    the_file(sup).unlink()
    done = cli(sup, "status")
    assert_status_ok(done)
    assert not quick_path(done)


def test_fallback_when_the_pid_is_stale(sup):
    record = json.loads(the_file(sup).read_text())
    record["start_time"] += 1   # the same pid, another process: a reused pid
    the_file(sup).write_text(json.dumps(record))
    done = cli(sup, "status")
    assert_status_ok(done)
    assert not quick_path(done)


def test_fallback_when_the_config_changed(sup):
    text = sup.config_path.read_text()
    sup.config_path.write_text(text + "\n# edited\n")
    done = cli(sup, "status")
    assert_status_ok(done)
    assert not quick_path(done)


def test_quick_again_after_a_reload(sup):
    """An edited config sends clients to it until a reload applies it; then the runtime file
    takes the new config's stamps and the quick path is back."""
    sup.config_path.write_text(sup.config_path.read_text()
                               + '  extra: {command: ["' + PY + '", "' + str(CHILDREN)
                               + '/sleeper.py"]}\n')
    done = cli(sup, "reload")
    assert done.returncode == 0, messages(done)
    assert not quick_path(done)
    wait_until(lambda: runfile.find(str(sup.config_path), None, sup.env), 30,
               "the runtime file rewritten after the reload")
    done = cli(sup, "status")
    assert_status_ok(done)
    assert quick_path(done)
    assert "extra" in done.stdout


def test_fallback_when_the_env_differs(sup):
    done = cli(sup, "status", env={"NODE_ENV": "production"})
    assert_status_ok(done)
    assert not quick_path(done)


def test_fallback_when_the_key_is_the_configs(tmp_path):
    with SupervisorProcess(tmp_path, CONFIG, env=private_runtime(tmp_path),
                           supervisor='api_key: "k-with-\\"quotes\\"-1234567890"') as s:
        s.wait_api(30)
        path = Path(runfile.file_for(str(s.config_path), s.env))
        wait_until(path.exists, 30, "the runtime file")
        assert "quotes" not in path.read_text()
        assert json.loads(path.read_text())["key"] == "config"
        done = cli(s, "status")
        assert_status_ok(done)
        assert not quick_path(done)
        assert s.stop() == 0


# --------------------------------------------------------------------------- forged files
FORGERIES = {
    "garbage": lambda p, rec: p.write_bytes(b"\x00{not json" * 10),
    "huge": lambda p, rec: p.write_bytes(b"[" * 5_000_000),
    "deep": lambda p, rec: p.write_text("[" * 3000 + "]" * 3000),
    "port 99999": lambda p, rec: p.write_text(json.dumps({**rec, "port": 99999})),
    "port as text": lambda p, rec: p.write_text(json.dumps({**rec, "port": "8900"})),
    "pid as bool": lambda p, rec: p.write_text(json.dumps({**rec, "pid": True})),
    "a list": lambda p, rec: p.write_text("[1, 2]"),
    "another config": lambda p, rec: p.write_text(json.dumps({**rec, "config": "/etc/x.yaml"})),
    "header injection": lambda p, rec: p.write_text(json.dumps({**rec, "host": "a\r\nX: y"})),
    "link to /dev/zero": lambda p, rec: (p.unlink(), p.symlink_to("/dev/zero")),
    "fifo": lambda p, rec: (p.unlink(), os.mkfifo(p)),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_file_falls_back(sup, forgery):
    path = the_file(sup)
    record = json.loads(path.read_text())
    FORGERIES[forgery](path, record)
    done = cli(sup, "status", timeout=60)
    assert_status_ok(done)
    assert not quick_path(done)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_another_users_file_or_directory_falls_back(sup):
    path = the_file(sup)
    os.chown(path, 65534, 65534)
    done = cli(sup, "status")
    assert_status_ok(done)
    assert not quick_path(done)
    os.chown(path, 0, 0)
    path.parent.chmod(0o755)   # a directory others may write into is not trusted either
    done = cli(sup, "status")
    assert_status_ok(done)
    assert not quick_path(done)
    path.parent.chmod(0o700)


# --------------------------------------------------------------------------- a bad peer
class BadPeer:
    """A loopback server that answers every connection with `answer(conn)` (bounded)."""

    def __init__(self, answer):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    self.answer(conn, self.stop)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


def endless_chunks(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(400):   # at most 20 s; the client gives up after 2 s
        if stop.wait(0.05):
            return
        conn.sendall(b"1\r\nx\r\n")


@pytest.mark.parametrize("answer, error", [
    (lambda c, s: c.sendall(b"garbage garbage\r\n\r\n"), "not an HTTP/1.1 status line"),
    (lambda c, s: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n"),
     "bad Content-Length"),
    (lambda c, s: c.sendall(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000), "too "),
    (lambda c, s: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!"), "not JSON"),
    (lambda c, s: s.wait(20), "in time"),
    (endless_chunks, "in time"),
])
def test_bad_peer_gives_a_clear_error(answer, error):
    peer = BadPeer(answer)
    client = Client("127.0.0.1", peer.port, "k", timeout=2.0)
    out, err = io.StringIO(), io.StringIO()
    try:
        started = time.monotonic()
        assert status(client, False, out, err) == 1
        assert time.monotonic() - started < 15
    finally:
        client.close()
        peer.close()
    assert error in err.getvalue() and "Traceback" not in err.getvalue()


def test_cli_against_a_peer_answering_garbage(sup):
    """A current-looking runtime file (this test's own pid) naming a peer that answers
    garbage: the client says so and exits 1, no traceback."""
    peer = BadPeer(lambda c, s: c.sendall(b"\x16\x03\x01 not http at all\r\n\r\n"))
    try:
        record = json.loads(the_file(sup).read_text())
        record.update(pid=os.getpid(), start_time=runfile.start_time(os.getpid()), port=peer.port)
        the_file(sup).write_text(json.dumps(record))
        done = cli(sup, "status")
        assert done.returncode == 1, done.stdout
        assert "control API error: not an HTTP/1.1 status line" in messages(done)
        assert "Traceback" not in done.stderr
    finally:
        peer.close()


# --------------------------------------------------------------------------- what it imports
# Top-level modules the quick `status` may import beyond a bare interpreter's: the standard
# library's socket and json and what they pull in. Add to it only with a figure.
ALLOWED = frozenset("""
    unified_system __future__ json _json re _sre sre_compile sre_parse sre_constants enum functools
    _functools collections _collections keyword operator _operator reprlib itertools copyreg
    types socket _socket selectors select math array errno time
""".split())
FORBIDDEN = ("yaml", "email", "http", "pydantic", "httpx", "h11", "typing", "argparse",
             "dataclasses", "pathlib", "hashlib", "dotenv", "urllib", "inspect", "encodings.idna")


def test_quick_status_imports_only_the_allowlist(sup):
    bare = subprocess.run([PY, "-X", "importtime", "-c", "pass"], capture_output=True,
                          text=True, check=True)
    done = cli(sup, "status")
    assert_status_ok(done)
    names = imported(done) - imported(bare)
    forbidden = sorted(n for n in names if n in FORBIDDEN or n.split(".")[0] in FORBIDDEN)
    assert forbidden == [], forbidden
    extra = sorted({n.split(".")[0] for n in names} - ALLOWED)
    assert extra == [], f"new imports on the quick path: {extra}"


# --------------------------------------------------------------------------- the argv parser
@pytest.mark.parametrize("argv, want", [
    (["status"], ("status", None, None, None, False, 100, False)),
    (["status", "--json", "-c", "a.yaml"], ("status", "a.yaml", None, None, True, 100, False)),
    (["status", "--config=a.yaml", "--env", "production"],
     ("status", "a.yaml", "production", None, False, 100, False)),
    (["logs", "web", "-n", "5", "-f"], ("logs", None, None, "web", False, 5, True)),
    (["logs", "web", "--lines=0"], ("logs", None, None, "web", False, 0, False)),
    (["stop", "web"], ("stop", None, None, "web", False, 100, False)),
    (["reload"], ("reload", None, None, None, False, 100, False)),
    (["status", "-h"], None), (["status", "--js"], None), (["status", "--json=1"], None),
    (["logs", "web", "-n", "abc"], None), (["logs", "web", "-n", "-5"], None),
    (["logs", "web", "-fn5"], None), (["logs", "-n", "5"], None), (["stop"], None),
    (["stop", "a", "b"], None), (["stop", "--", "-a"], None), (["status", "--json", "web"], None),
    (["status", "-c"], None), (["-c", "a.yaml", "status"], None), (["run"], None), ([], None),
    (["logs", "web", "-n", "\u0665"], None), (["status", "-f"], None),
    (["status", "-c", "a.yaml", "-c", "b.yaml"], None), (["status", "--config="], None),
])
def test_quick_parse_takes_only_plain_command_lines(argv, want):
    got = quick.parse(argv)
    assert (None if got is None else (got.command, got.config, got.env, got.name, got.json,
                                      got.lines, got.follow)) == want


def test_odd_command_lines_keep_argparses_messages(sup):
    done = cli(sup, "logs", "web", "-n", "abc")
    assert done.returncode == 2 and "invalid int value: 'abc'" in messages(done)
    done = cli(sup, "logs", "web", "-n", "20000")
    assert done.returncode == 1 and "-n must be between 0 and 10000" in messages(done)
    done = cli(sup, "status", "--help")
    assert done.returncode == 0 and "--json" in done.stdout
