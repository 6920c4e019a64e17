"""A Python child that does nothing until signalled: the interpreter's start-up is what it
costs (bench/start_stop.py --child python)."""
import signal

signal.pause()
