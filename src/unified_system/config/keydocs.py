"""What each services.yaml key does, in a sentence: the descriptions of the JSON Schema
(`python start_system.py schema`) and of docs/configuration.md.

Keyed by "Model.field" of config/schema.py; a subclass's field finds its base's entry.
Kept beside the models rather than in them, so the models stay a list of types and
defaults that reads at a glance. tests/test_contract_schema.py fails while a key has none.
"""

from __future__ import annotations

SECTIONS: dict[str, str] = {
    "Config": "The file's top level.",
    "SupervisorConfig": "The supervisor itself: its control API, state directory, logs and alerts.",
    "LogConfig": "The supervisor's own log (`<state_dir>/logs/supervisor.log`) and the rotation "
                 "of every log file.",
    "WebhookAlerts": "Webhooks told of the owner's events (SPEC §2; the body: SPEC §9).",
    "Service": "One service: a program the supervisor starts, watches and restarts.",
    "Dependency": "One entry of `depends_on`: when this service may start.",
    "Build": "A step run in the service's cwd before its first start, when an input changed.",
    "Probe": "A readiness probe: exactly one of http / tcp / exec / notify, plus "
             "Kubernetes-style timing. It only sets `ready`; it never restarts anything.",
    "StartupProbe": "A startup probe: holds liveness back until it first passes; failing it "
                    "`failure_threshold` times restarts the service. Same keys as readiness, "
                    "without `notify` and `start_interval`.",
    "LivenessProbe": "A liveness probe: failing it `failure_threshold` times in a row restarts the "
                     "service. Same keys as readiness, without `notify` and `start_interval`.",
    "HttpCheck": "An HTTP GET that passes on any 2xx/3xx answer, or on `status`.",
    "TcpCheck": "A TCP connect that passes when the connection is accepted.",
    "ExecCheck": "A program run (never through a shell) that passes when it exits 0.",
    "Heartbeat": "Freeze detection: the child sends `WATCHDOG=1` (or POSTs its heartbeat URL).",
    "Restart": "When and how often a service that ended is started again.",
    "Backoff": "The delay before each restart: `initial`, times `multiplier` per restart, up to "
               "`max`, each spread by ±`jitter`.",
    "Stop": "How the service is stopped.",
    "Limits": "Resource limits.",
    "Watch": "File watching: a change restarts the service (off unless set).",
    "Checkpoint": "A durable directory for the child (`CHECKPOINT_DIR`), kept across restarts.",
    "Listen": "A socket the supervisor binds and passes to the child (systemd socket activation, "
              "first fd 3).",
}

KEYS: dict[str, str] = {
    # top level
    "Config.version": "The format of this file; only 1.",
    "Config.supervisor": "The supervisor's own settings.",
    "Config.services": "The services, by name (`[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 63 characters).",
    "Config.environments": "Overlays selected by `--env NAME` or `$NODE_ENV`: each is merged over "
                           "this file (its `services` and `supervisor` keys over the same keys here).",
    # supervisor
    "SupervisorConfig.host": "The control API's bind address. A non-loopback address exposes the API "
                             "to the network: every call then needs the key.",
    "SupervisorConfig.port": "The control API's port.",
    "SupervisorConfig.api_key": "The key of the control API (header `X-API-Key`). Empty: one is "
                                "generated into `<state_dir>/api_key` (mode 0600).",
    "SupervisorConfig.state_dir": "Where logs, state.json, crash dumps, checkpoints and the API key "
                                  "are kept; relative to services.yaml.",
    "SupervisorConfig.shutdown_timeout": "The budget for stopping everything.",
    "SupervisorConfig.exit_on_critical_failure": "true: a critical service reaching `fatal` stops "
                                                 "all, and the supervisor exits 1.",
    "SupervisorConfig.history": "Samples of each service (CPU, RSS, restarts, probe latency, ready) kept "
                                "for charts: `GET /api/services/{name}/history` and SSE `sample`.",
    "HistoryConfig.period": "One sample of every service this often (0.1 s to 1 h).",
    "HistoryConfig.keep": "How long samples are kept (at most 7 days, and 100,000 samples).",
    "SupervisorConfig.watch_config": "true: a change of services.yaml reloads it, as `reload` does.",
    "SupervisorConfig.open_reads": "true: a GET from a loopback peer that names a loopback Host "
                                   "needs no `X-API-Key`. false (default): every route but "
                                   "/health and /metrics needs the key, whoever asks.",
    "SupervisorConfig.subreaper": "Adopt and reap orphaned grandchildren "
                                  "(`PR_SET_CHILD_SUBREAPER`). Unset: only as PID 1.",
    "SupervisorConfig.parent_death_signal": "Sent to every service's process group by a guard "
                                            "process if the supervisor dies, even by SIGKILL. "
                                            "null: no guard; services outlive a killed supervisor.",
    "SupervisorConfig.log": "The supervisor's log and the rotation of every log file.",
    "SupervisorConfig.notify": "Webhook alerts.",
    "LogConfig.level": "The lowest level written to the supervisor's log (any case).",
    "LogConfig.format": "The console's format: json (JSON lines), or console and auto (readable "
                        "text, coloured on a terminal). The log files are always JSON lines.",
    "LogConfig.max_bytes": "A log file is rotated when it reaches this size.",
    "LogConfig.backups": "Rotated files kept, as `<name>.log.1` … `.N`.",
    "WebhookAlerts.webhooks": "URLs (http:// or https://) POSTed a JSON body for each event named "
                             "in `events`.",
    "WebhookAlerts.events": "The event types and states that are sent to the webhooks.",
    # service
    "Service.command": "The program and its arguments: a list, or a string split as a shell would "
                       "split it. Never run through a shell.",
    "Service.cwd": "The working directory, relative to services.yaml.",
    "Service.env": "Variables set for the child (over what it inherits).",
    "Service.env_file": "Env files read for the child, relative to services.yaml: a path or a list.",
    "Service.inherit_env": "What the child sees of the supervisor's environment.",
    "Service.enabled": "false: never started (state `disabled`).",
    "Service.critical": "false: its failure degrades the system instead of making it unhealthy.",
    "Service.depends_on": "What must be up first: a list of names (condition `started`) or a map of "
                          "name to `{condition, restart}`.",
    "Service.build": "A build step run before the first start when one of its inputs changed.",
    "Service.readiness": "Sets `ready`; dependents with `condition: healthy` wait on it.",
    "Service.startup": "Runs first and holds liveness back until it passes.",
    "Service.liveness": "Restarts the service after `failure_threshold` failures in a row.",
    "Service.heartbeat": "Freeze detection by heartbeats (`WATCHDOG_USEC` is set for the child).",
    "Service.restart": "The restart policy, backoff and circuit breaker.",
    "Service.rollout": "How a rolling restart (a service with `listen` or `instances > 1`) proves "
                       "the new incarnation before the old one is signalled.",
    "Service.stop": "The stop signal and the time allowed before SIGKILL.",
    "Service.limits": "Resource limits.",
    "Service.watch": "Restart when files change (off unless set).",
    "Service.checkpoint": "Gives the child `CHECKPOINT_DIR`, kept across restarts.",
    "Service.listen": "Sockets the supervisor binds and passes as fd 3, 4, …; a restart is then "
                      "rolling, so no connection is refused.",
    "Service.secrets": "Names of secrets generated once into <state_dir>/secrets/NAME (0600) and "
                       "given to the child as env variables of those names; services listing one "
                       "name share its value. Always redacted.",
    "Service.instances": "Copies of the process (`UNIFIED_INSTANCE` 0..n-1); with `listen` they "
                         "share the sockets.",
    "Dependency.condition": "started: spawned; healthy: running and ready; completed: exited 0.",
    "Dependency.restart": "true: restart this service when the dependency restarts.",
    "Build.command": "The build program and its arguments (never run through a shell).",
    "Build.inputs": "Files (relative to the service's cwd) whose content decides whether the build "
                    "runs again.",
    "Build.timeout": "A build running longer is killed and the service is `fatal`.",
    # probes
    "Probe.http": "Probe with an HTTP GET.",
    "Probe.tcp": "Probe with a TCP connect.",
    "Probe.exec": "Probe by running a program.",
    "Probe.notify": "Readiness only: ready when the child sends `READY=1`.",
    "Probe.initial_delay": "Wait this long after the spawn before the first probe.",
    "Probe.period": "Time between probes (liveness default 5s).",
    "Probe.start_interval": "Readiness only: the period while the service is starting, until its "
                            "first success (Docker's `start_interval`). Default: `period`.",
    "Probe.timeout": "A probe not answered within this fails.",
    "Probe.failure_threshold": "Failures in a row that count as failed.",
    "Probe.success_threshold": "Successes in a row that count as passed.",
    "HttpCheck.url": "The URL (http:// or https://).",
    "HttpCheck.status": "The one status that passes. Unset: any 2xx or 3xx.",
    "HttpCheck.keep_alive": "Keep the connection open for the next attempt when the answer "
                            "allows it (http:// only; a fresh one at least every 30 s, and "
                            "after any failure). false: a fresh connection per attempt.",
    "TcpCheck.port": "The port to connect to.",
    "TcpCheck.host": "The host to connect to.",
    "ExecCheck.command": "The program and its arguments (never run through a shell).",
    # heartbeat, restart, stop, limits
    "Heartbeat.timeout": "No heartbeat for this long is a soft freeze (health `frozen`, nothing "
                         "killed).",
    "Heartbeat.hard_timeout": "No heartbeat for this long is a hard freeze: the process is dumped, "
                              "sent SIGABRT, then SIGKILL, and restarted. Must exceed `timeout`.",
    "Rollout.min_ready": "The new incarnation must stay alive and ready this long before the old one "
                         "is signalled (Kubernetes' minReadySeconds); 0: as soon as it is ready.",
    "Rollout.timeout": "The new incarnation must be proven within this (plus `min_ready`), or the "
                       "rollout fails and the old one keeps serving. Default: the reload start window.",
    "Restart.policy": "always, on-failure (not after exit 0) or never.",
    "Restart.backoff": "The delay before each restart.",
    "Restart.reset_after": "This long up and the backoff starts again from `initial`.",
    "Restart.max_restarts": "More than this many restarts within `window` opens the circuit: "
                            "`fatal`.",
    "Restart.window": "The sliding window `max_restarts` counts in.",
    "Restart.cooldown": "After this, the open circuit half-opens and one start is tried. null: stay "
                        "fatal.",
    "Backoff.initial": "The first delay.",
    "Backoff.max": "The longest delay.",
    "Backoff.multiplier": "Each delay is the previous one times this.",
    "Backoff.jitter": "Each delay is spread by up to this fraction, either way.",
    "Stop.signal": "Sent to the whole process group.",
    "Stop.timeout": "Then SIGKILL to the group.",
    "Limits.max_memory": "RSS of the whole process tree; over it, a graceful restart (reason "
                         "`memory`).",
    "Watch.paths": "Paths watched, relative to the service's cwd: one or a list.",
    "Watch.ignore": "Glob patterns of names whose changes are ignored.",
    "Watch.debounce": "Changes within this long make one restart.",
    "Checkpoint.keep": "Generations kept (`CHECKPOINT_KEEP`).",
    "Listen.port": "The port bound.",
    "Listen.host": "The address bound.",
    "Listen.name": "Its name in `LISTEN_FDNAMES` (no ':' or spaces).",
}


def key_doc(mro: tuple[type, ...], field: str) -> str | None:
    """The description of `field` for a model with method resolution order `mro`."""
    for cls in mro:
        text = KEYS.get(f"{cls.__name__}.{field}")
        if text is not None:
            return text
    return None
