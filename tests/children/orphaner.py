"""Leaves an orphan: starts a grandchild in its own session (outside our process group),
writes its pid to argv[1], and exits. The grandchild exits once it sees it was orphaned."""
import os
import subprocess
import sys

code = ("import os, sys, threading\n"
        "parent = int(sys.argv[1])\n"
        "while os.getppid() == parent:\n"
        "    threading.Event().wait(0.02)\n")
grandchild = subprocess.Popen([sys.executable, "-c", code, str(os.getpid())], start_new_session=True)
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(str(grandchild.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
os._exit(0)  # no wait(): the grandchild is orphaned
