"""A build step that hangs the first time (argv[1], a marker file, absent) and succeeds after."""
import os
import sys
import threading

marker = sys.argv[1]
first = not os.path.exists(marker)
open(marker, "a").close()
if first:
    threading.Event().wait(60)
print("built", flush=True)
