"""The application's Python backend: trades ledger + the AI manager task queue (FastAPI)."""

__version__ = "0.1.0"
