"""While the file argv[1] exists, lives argv[2] seconds then exits 1 (a service that keeps
being respawned); once the file is gone, idles until SIGTERM (exit 0)."""
import os
import signal
import sys
import threading

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"restless up pid={os.getpid()}", flush=True)
if os.path.exists(sys.argv[1]):
    threading.Event().wait(float(sys.argv[2]))
    sys.exit(1)
while True:
    signal.pause()
