"""Starts a grandchild that ignores SIGTERM and writes its pid to argv[1], then idles."""
import os
import signal
import subprocess
import sys

grandchild = subprocess.Popen(
    [sys.executable, "-c", "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
     "while True: signal.pause()"])
with open(sys.argv[1], "w") as fh:
    fh.write(f"{grandchild.pid}\n")
print(f"spawner up, grandchild {grandchild.pid}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    signal.pause()
