"""A service that speaks sd_notify through PyPI's `sdnotify` (a connected datagram socket):
READY=1, then WATCHDOG=1 every 0.2 s, writing how many it sent to argv[1]."""
import os
import signal
import sys
import time

import sdnotify

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
count = sys.argv[1]
notifier = sdnotify.SystemdNotifier(debug=True)
notifier.notify("READY=1\nSTATUS=up")
n = 0
while True:
    notifier.notify("WATCHDOG=1")
    n += 1
    with open(count + ".tmp", "w") as fh:
        fh.write(str(n))
    os.replace(count + ".tmp", count)
    time.sleep(0.2)  # the heartbeat period of this child, not a test's synchronisation
