"""Writes argv[1] bytes of lines of many lengths to stdout, in blocks of up to 1 MiB, with
one line of argv[2] bytes once argv[3] bytes are out; then says "flood done" and idles
until SIGTERM."""
import signal
import sys

total, long_line, long_at = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer.raw
lines = [b"%d " % n + b"y" * (n * 37 % 500) + b"\n" for n in range(1000)]
written, pending, n, block, long_done = 0, 0, 0, [], False
while written + pending < total:
    if not long_done and written + pending >= long_at:
        block.append(b"L" * long_line + b"\n")
        pending += long_line + 1
        long_done = True
    block.append(lines[n % len(lines)])
    pending += len(block[-1])
    n += 1
    if pending >= (1 << 20) or written + pending >= total:
        data = b"".join(block)
        view = memoryview(data)
        while view:
            view = view[out.write(view):]
        written += len(data)
        block, pending = [], 0
print("flood done", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
