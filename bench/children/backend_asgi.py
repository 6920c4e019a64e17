"""The application's backend as an ASGI factory, for servers started by their own command
line (uvicorn --factory, gunicorn -k uvicorn.workers.UvicornWorker): bench/rolling_restarts.py
compares them with `python -m backend`."""

from backend.app import create_app
from backend.settings import from_env


def app():  # an ASGI app (FastAPI)
    return create_app(from_env())
