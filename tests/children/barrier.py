"""sd_notify_barrier() as libsystemd does it: READY=1, then BARRIER=1 carrying the write end
of a pipe, closed here at once; the supervisor holds its copy until READY=1 is handled.
Writes to argv[1] (JSON) the wall time at which the pipe hung up, or that it never did."""
import json
import os
import select
import signal
import socket
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
path = os.environ["NOTIFY_SOCKET"]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1", path)
    r, w = os.pipe()
    s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, w.to_bytes(4, sys.byteorder))], 0, path)
    os.close(w)
poller = select.poll()
poller.register(r, select.POLLHUP)
hung_up = bool(poller.poll(5000))   # libsystemd's barrier waits 5 s
with open(sys.argv[1] + ".tmp", "w") as fh:
    json.dump({"hung_up": hung_up, "at": time.time()}, fh)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    signal.pause()
