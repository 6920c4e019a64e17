"""Prints the value of the env variable named by argv[1] (a secret the supervisor must redact
from its crash dump), then exits 3."""
import os
import sys

print(f"connecting with {os.environ.get(sys.argv[1], '')}", flush=True)
sys.exit(3)
