"""A 100-service graph: a 10-deep chain with tcp readiness, plus 90 leaves fanned out from it.
Time from `run` to all 100 spawned, against the graph's critical path measured alone.

The critical path alone polls each link's port every 2 ms; the supervisor probes a starting
link as often (`start_interval: 2ms`, then a 1 s period once ready).

    python bench/graph.py [--rounds 3] [--parent-death-signal none]
"""

import argparse
import statistics
import subprocess
import sys
import time

from start_stop import supervisor_started_at

from _common import SLEEP, Bench, add_parent_death_signal, free_port

LISTENER = ("import socket,sys,signal\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind(('127.0.0.1',int(sys.argv[1])));s.listen()\nsignal.pause()\n")
DEPTH, LEAVES = 10, 9


def solo_ready_time() -> float:
    """One chain link on its own: spawn to accepting connections (the link's true cost)."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-S", "-c", LISTENER, str(port)])
    import socket
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    proc.kill()  # not SIGTERM: one arriving just before signal.pause() would be missed
    proc.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    add_parent_death_signal(parser)
    args = parser.parse_args()
    totals, after_boot, paths = [], [], []
    for _ in range(args.rounds):
        critical = sum(solo_ready_time() for _ in range(DEPTH))
        services = {}
        for i in range(DEPTH):
            port = free_port()
            services[f"c{i}"] = {
                "command": [sys.executable, "-S", "-c", LISTENER, str(port)],
                "readiness": {"tcp": {"port": port}, "period": "1s", "start_interval": "2ms"},
                **({"depends_on": {f"c{i - 1}": {"condition": "healthy"}}} if i else {}),
            }
            for j in range(LEAVES):
                services[f"c{i}-leaf{j}"] = {"command": [SLEEP, "infinity"],
                                             "depends_on": {f"c{i}": {"condition": "healthy"}}}
        bench = Bench(services, supervisor={"log": {"level": "INFO"},
                                            "parent_death_signal": args.parent_death_signal})
        try:
            t0 = bench.start()
            wall0 = time.time() - (time.perf_counter() - t0)
            t1 = bench.wait_children(DEPTH * (LEAVES + 1), timeout=120)
            totals.append(t1 - t0)
            after_boot.append(wall0 + (t1 - t0) - supervisor_started_at(bench))
            paths.append(critical)
            bench.stop()
        finally:
            bench.close()
    med = statistics.median
    print(f"graph of {DEPTH * (LEAVES + 1)} ({DEPTH}-deep tcp-ready chain + fan-out): critical path "
          f"alone {med(paths):.3f} s; all spawned {med(after_boot):.3f} s after the supervisor was up "
          f"(ratio {med(a / p for a, p in zip(after_boot, paths, strict=True)):.2f}x), {med(totals):.3f} s from exec "
          f"of `run` (ratio {med(t / p for t, p in zip(totals, paths, strict=True)):.2f}x)")


if __name__ == "__main__":
    main()
