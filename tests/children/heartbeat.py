"""Sends WATCHDOG=1 every argv[1] s while file argv[2] does not exist; idles otherwise.

Deleting the file resumes heartbeats. A third arg 'trigger' sends WATCHDOG=trigger once, at start.
"""
import os
import signal
import socket
import sys
import threading

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
period, pause_flag = float(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
target = os.environ["NOTIFY_SOCKET"]
sock.sendto(b"READY=1", target)
if len(sys.argv) > 3 and sys.argv[3] == "trigger":
    marker = pause_flag + ".triggered"
    if not os.path.exists(marker):
        open(marker, "w").close()
        sock.sendto(b"WATCHDOG=trigger", target)
print(f"heartbeat pid={os.getpid()}", flush=True)
tick = threading.Event()
while True:
    if not os.path.exists(pause_flag):
        sock.sendto(b"WATCHDOG=1", target)
    tick.wait(period)
