"""A build step: prints argv[1] lines `build step N`, then exits with argv[2] (default 0)."""
import sys

for i in range(int(sys.argv[1])):
    print(f"build step {i} of {sys.argv[1]}", flush=True)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
