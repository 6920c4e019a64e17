"""Failed requests during rolling restarts of the application's backend under real `wrk`.

    python bench/rolling_restarts.py [--restarts 5] [--server backend] [--connections 20]

The backend serves on a socket the supervisor holds (`listen`), with its http readiness probe
(answered, on the shared port, by whichever process accepts). `wrk` (Debian package) keeps
`--connections` keep-alive connections busy on /health while the service is restarted
`--restarts` times through the control API, each restart waited out (new incarnation
proven, old one stopped). Every failure counts: connect, read, write and timeout errors and
non-2xx answers. `--server` picks how the backend is run:

  backend           python -m backend (its own drain on SIGTERM)
  uvicorn           uvicorn --fd 3 --factory (plain uvicorn, as in the issue)
  uvicorn-options   the same with --timeout-graceful-shutdown 10 --timeout-keep-alive 30
  gunicorn-uvicorn  gunicorn -k uvicorn.workers.UvicornWorker, one worker
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from _common import ROOT, Bench, free_port

WRK = shutil.which("wrk")
SERVERS = {
    "backend": [sys.executable, "-m", "backend"],
    "uvicorn": [sys.executable, "-m", "uvicorn", "--fd", "3", "--factory", "backend_asgi:app",
                "--log-level", "warning"],
    # uvicorn's own knobs: neither keeps an idle keep-alive connection open through shutdown
    "uvicorn-options": [sys.executable, "-m", "uvicorn", "--fd", "3", "--factory", "backend_asgi:app",
                        "--log-level", "warning", "--timeout-graceful-shutdown", "10",
                        "--timeout-keep-alive", "30"],
    "gunicorn-uvicorn": [sys.executable, "-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker",
                         "-w", "1", "--graceful-timeout", "8", "backend_asgi:app()"],
}


def service(server: str, port: int, data: str) -> dict:
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "services" / "backend"),
                            str(ROOT / "bench" / "children")])
    return {"command": SERVERS[server], "cwd": str(ROOT / "services" / "backend"),
            "env": {"PYTHONPATH": path, "DATA_DIR": data, "LOG_LEVEL": "WARNING"},
            "listen": [{"port": port, "name": "http"}],
            "readiness": {"http": {"url": f"http://127.0.0.1:{port}/health"}, "period": "1s",
                          "start_interval": "100ms"},
            "stop": {"timeout": "15s"}}


def records(bench: Bench) -> list[dict]:
    try:
        text = (bench.state / "logs" / "supervisor.log").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def count(bench: Bench, event: str, **match: str) -> int:
    return sum(1 for r in records(bench) if r.get("event") == event
               and all(r.get(k) == v for k, v in match.items()))


def wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)  # a poll period: the condition decides


def restart(bench: Bench, api: int) -> None:
    key = (bench.state / "api_key").read_text().strip()
    request = urllib.request.Request(f"http://127.0.0.1:{api}/api/services/backend/restart",
                                     method="POST", headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202, answer.status


def parse_wrk(text: str) -> dict[str, int]:
    found = {"requests": int(re.search(r"(\d+) requests in", text).group(1)), "non2xx": 0}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    for name, value in zip(("connect", "read", "write", "timeout"), errors.groups() if errors else (0,) * 4,
                           strict=True):
        found[name] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        found["non2xx"] = int(non2xx.group(1))
    return found


def run_case(server: str, restarts: int, connections: int) -> dict[str, int]:
    port, api = free_port(), free_port()
    bench = Bench({}, supervisor={"log": {"level": "INFO"}, "port": api})
    config = json.loads(bench.config.read_text())
    config["services"]["backend"] = service(server, port, str(bench.dir / "data"))
    bench.config.write_text(json.dumps(config))
    try:
        bench.start()
        wait(lambda: count(bench, "state", service="backend", state="running") >= 1, 60, "backend up")
        wait(lambda: (bench.state / "api_key").exists(), 30, "the API key")
        # bounded: wrk stops at -d, or at SIGINT once the restarts are done (it then reports)
        wrk = subprocess.Popen([WRK, "-t2", f"-c{connections}", "-d120s", "--timeout", "5s",
                                f"http://127.0.0.1:{port}/health"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # steady load before the first restart
        for i in range(restarts):
            restart(bench, api)
            wait(lambda i=i: count(bench, "rolling restart: new incarnation ready, stopping the old one")
                 + count(bench, "rolling restart aborted: the new incarnation failed; the old one keeps serving")
                 > i, 60, f"rollout {i}")
            wait(lambda i=i: count(bench, "state", service="backend", state="stopped") > i, 60,
                 f"the old incarnation {i} stopped")
        time.sleep(1.0)  # the last connections' next requests, after the last stop
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=30)
        result = parse_wrk(out)
        result["aborted"] = count(bench, "rolling restart aborted: the new incarnation failed; "
                                         "the old one keeps serving")
        bench.stop()
        return result
    finally:
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--server", choices=sorted(SERVERS), action="append")
    args = parser.parse_args()
    if WRK is None:
        sys.exit("wrk is not installed (Debian package wrk)")
    for server in args.server or ["backend"]:
        r = run_case(server, args.restarts, args.connections)
        failed = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["non2xx"]
        print(f"{server}: {args.restarts} rolling restarts under wrk -c{args.connections}: {failed} failed "
              f"of {r['requests']} requests (connect {r['connect']}, read {r['read']}, write {r['write']}, "
              f"timeout {r['timeout']}, non-2xx {r['non2xx']}; rollouts aborted {r['aborted']})", flush=True)


if __name__ == "__main__":
    main()
