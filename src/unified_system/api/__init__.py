"""The control plane: HTTP API, /metrics, server-sent events, alerts."""
