"""Starts a grandchild that ignores SIGTERM, then idles. The grandchild itself writes its pid
to argv[1], and only once it ignores SIGTERM: a reader never sees a pid that a quick stop
could still end the easy way."""
import os
import signal
import subprocess
import sys

code = ("import os, signal, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "with open(sys.argv[1] + '.tmp', 'w') as fh:\n"
        "    fh.write(str(os.getpid()))\n"
        "os.replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
        "while True:\n"
        "    signal.pause()\n")
grandchild = subprocess.Popen([sys.executable, "-c", code, sys.argv[1]])
print(f"spawner up, grandchild {grandchild.pid}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    signal.pause()
