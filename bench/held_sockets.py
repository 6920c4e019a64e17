"""Restarts under load: a closed-loop HTTP client (bounded at 20 s) while a service is
restarted 20 times, once with held sockets (`listen`) and once binding its own port.

    python bench/held_sockets.py [--restarts 20]
"""

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from pathlib import Path

from _common import Bench, free_port

CHILDREN = Path(__file__).resolve().parent.parent / "tests" / "children"


class Load(threading.Thread):
    def __init__(self, port: int, seconds: float = 20.0, max_requests: int = 200_000) -> None:
        super().__init__(daemon=True)
        self.port, self.seconds, self.max = port, seconds, max_requests
        self.ok = self.failed = 0
        self.halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self.halt.is_set() and time.monotonic() < deadline and self.ok + self.failed < self.max:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                ok = conn.getresponse().status == 200
                conn.close()
            except OSError:
                ok = False
            if ok:
                self.ok += 1
            else:
                self.failed += 1


def run_case(held: bool, restarts: int) -> tuple[int, int]:
    port = free_port()
    if held:
        service = {"command": [sys.executable, str(CHILDREN / "held_http.py")],
                   "listen": [{"port": port}], "readiness": {"notify": True}}
    else:
        service = {"command": [sys.executable, str(CHILDREN / "http_health.py"), str(port), "/nonexistent"],
                   "readiness": {"http": {"url": f"http://127.0.0.1:{port}/"}, "period": "20ms"}}
    bench = Bench({"web": service}, supervisor={"log": {"level": "INFO"}})
    log = bench.state / "logs" / "supervisor.log"

    def running() -> int:
        return sum(1 for line in log.read_text().splitlines()
                   if (r := json.loads(line)).get("event") == "state" and r.get("state") == "running")

    try:
        bench.start()
        while not log.exists() or running() < 1:
            time.sleep(0.01)
        load = Load(port)
        load.start()
        base = bench.config.read_text()
        for i in range(restarts):
            config = json.loads(base)
            config["services"]["web"]["env"] = {"ROUND": str(i)}
            bench.config.write_text(json.dumps(config))
            before = running()
            bench.proc.send_signal(signal.SIGHUP)   # a changed definition: a restart
            while running() <= before:
                time.sleep(0.01)
            time.sleep(0.3)
        load.halt.set()
        load.join()
        bench.stop()
        return load.ok, load.failed
    finally:
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--restarts", type=int, default=20)
    args = parser.parse_args()
    for held in (True, False):
        ok, failed = run_case(held, args.restarts)
        label = "held sockets (listen)" if held else "own bind, no listen"
        print(f"{label}: {args.restarts} restarts under a closed loop: {ok} ok, {failed} failed requests")


if __name__ == "__main__":
    main()
