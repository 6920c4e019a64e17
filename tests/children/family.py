"""A service with a grandchild in its process group that takes the default SIGTERM. The
grandchild's pid goes to argv[1] once it runs."""
import os
import signal
import subprocess
import sys

grandchild = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(str(grandchild.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    signal.pause()
