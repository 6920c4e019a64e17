"""Writes its environment as JSON to argv[1], then idles."""
import json
import os
import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(sys.argv[1] + ".tmp", "w") as fh:
    json.dump(dict(os.environ), fh)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    signal.pause()
