"""Socket activation for tests: ``fdexec.py FD [NAME] -- argv...``.

Moves the inherited FD to 3, sets LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES as systemd does,
and execs argv; exec keeps the pid, so LISTEN_PID names the program itself.
"""

import os
import sys

sep = sys.argv.index("--")
fd, names, argv = int(sys.argv[1]), sys.argv[2:sep], sys.argv[sep + 1:]
if fd != 3:
    os.dup2(fd, 3)  # dup2 makes fd 3 inheritable
    os.close(fd)
else:
    os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
if names:
    os.environ["LISTEN_FDNAMES"] = names[0]
os.execvp(argv[0], argv)
