"""A chatty service: argv[1] INFO lines, then a warning, an error and a traceback, then idles
until SIGTERM (exit 0)."""
import signal
import sys
import traceback

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
for i in range(count):
    print(f"2026-12-03 10:00:00 INFO trading-bot: fill {i} 0.1 BTC @ 43000", flush=True)
print('{"level":"info","msg":"json fill with error in its text"}', flush=True)
print("WARNING: broker latency 900 ms", flush=True)
print("ERROR broker rejected order 7", flush=True)
try:
    raise ValueError("bad tick from the feed")
except ValueError:
    traceback.print_exc()
sys.stderr.flush()
print("chatty done", flush=True)
while True:
    signal.pause()
