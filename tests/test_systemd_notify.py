"""Run under a pretend systemd: a real datagram socket as NOTIFY_SOCKET; and as a subreaper."""

import json
import signal
import socket

import psutil

from harness import SupervisorProcess, free_port, tcp_service, wait_until


class FakeSystemd:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return self.messages

    def saw(self, text):
        return any(text in m for m in self.drain())

    def close(self):
        self.sock.close()


def test_ready_status_watchdog_reloading_stopping(tmp_path):
    systemd = FakeSystemd(tmp_path / "notify.sock")
    port = free_port()
    try:
        with SupervisorProcess(tmp_path, f"""
            services:
              slow: {tcp_service(port, "0.5", probe="period: 50ms")}
              side:
                command: ["{{py}}", "{{children}}/sleeper.py"]
                critical: false
        """, env={"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "200000"}) as sup:
            # the first ping waits on the supervisor's own start-up
            wait_until(lambda: systemd.saw("WATCHDOG=1"), 30, "watchdog pings", seen=systemd.drain)
            wait_until(lambda: systemd.saw("READY=1"), 10, "READY=1", seen=systemd.drain)
            # READY=1 came only after the slow critical service was healthy
            assert sup.record("slow", "running") is not None
            assert any("STATUS=2/2 services healthy" in m for m in systemd.drain())
            pings = sum(1 for m in systemd.drain() if m == "WATCHDOG=1")
            wait_until(lambda: sum(1 for m in systemd.drain() if m == "WATCHDOG=1") >= pings + 3,
                       5, "regular pings")
            sup.signal(signal.SIGHUP)
            wait_until(lambda: systemd.saw("RELOADING=1"), 5, "RELOADING=1", seen=systemd.drain)
            assert sup.stop() == 0
            wait_until(lambda: systemd.saw("STOPPING=1"), 5, "STOPPING=1", seen=systemd.drain)
    finally:
        systemd.close()


def test_children_do_not_inherit_the_managers_notify_socket(tmp_path):
    systemd = FakeSystemd(tmp_path / "notify.sock")
    dump = tmp_path / "env.json"
    try:
        with SupervisorProcess(tmp_path, f"""
            services:
              svc:
                command: ["{{py}}", "{{children}}/envdump.py", "{dump}"]
        """, env={"NOTIFY_SOCKET": systemd.path}) as sup:
            wait_until(dump.exists, 10, "env dump")
            assert json.loads(dump.read_text())["NOTIFY_SOCKET"] != systemd.path
            assert sup.stop() == 0
    finally:
        systemd.close()


def test_as_subreaper_an_orphaned_grandchild_is_reaped(tmp_path):
    marker = tmp_path / "grandchild.pid"
    with SupervisorProcess(tmp_path, f"""
        services:
          parent:
            command: ["{{py}}", "{{children}}/orphaner.py", "{marker}"]
            restart: {{policy: never}}
    """, supervisor="subreaper: true") as sup:
        wait_until(marker.exists, 10, "grandchild pid")
        grandchild = int(marker.read_text())
        # it was adopted by the supervisor, then exited; the supervisor reaped it: no zombie
        wait_until(lambda: not psutil.pid_exists(grandchild), 10, "the orphan to be reaped",
                   seen=lambda: psutil.Process(grandchild).status() if psutil.pid_exists(grandchild) else "gone")
        assert sup.stop() == 0
