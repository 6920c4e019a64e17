"""Sleeps on stdin; each line is an order: `fork` starts a `sleep` grandchild (fork + exec),
`kill` kills and reaps them, `spin` burns CPU for a second, `name TEXT` renames the process
(its comm in /proc/<pid>/stat, spaces and parentheses allowed), `exit` ends it. Prints `ok`
after each order."""
import ctypes
import os
import sys
import time

PR_SET_NAME = 15
libc = ctypes.CDLL(None, use_errno=True)
kids = []
for line in sys.stdin:
    order, _, arg = line.rstrip("\n").partition(" ")
    if order == "fork":
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/sleep", ["sleep", "120"])
        kids.append(pid)
    elif order == "kill":
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        kids.clear()
    elif order == "spin":
        end = time.process_time() + 1.0
        while time.process_time() < end:
            pass
    elif order == "name":
        libc.prctl(PR_SET_NAME, arg.encode()[:15], 0, 0, 0)
    elif order == "exit":
        break
    print("ok", flush=True)
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
