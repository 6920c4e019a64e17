"""Starts a grandchild that ignores the polite stop signals (SIGTERM and SIGINT: PM2 stops
with SIGINT, the others with SIGTERM), then idles; exits on SIGTERM or SIGINT.

The grandchild writes its pid to argv[1] only after its handlers are installed, so a stop sent
once the file exists always meets a stubborn grandchild. Only SIGKILL removes it, e.g. from a
supervisor that kills the program's whole process group or tree."""
import os
import signal
import subprocess
import sys

for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: os._exit(0))
GRANDCHILD = """
import os, signal, sys
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()}\\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    signal.pause()
"""
grandchild = subprocess.Popen([sys.executable, "-c", GRANDCHILD, sys.argv[1]])
print(f"spawner up, grandchild {grandchild.pid}", flush=True)
while True:
    signal.pause()
