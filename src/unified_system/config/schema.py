"""The services.yaml schema (SPEC §2) as frozen pydantic models; field names are the keys.

Relative paths resolve against `base_dir` from the validation context (the directory of
services.yaml), else the process's cwd. Watch paths resolve against the service's cwd.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from unified_system.config.errors import hint
from unified_system.config.units import Argv, Duration, EnvValue, SignalName, Size
from unified_system.config.view import enabled_services, probe_kind

# A pydantic plugin (logfire's, for one) is handed every value a model validates, secrets
# included, and looking for plugins reads the metadata of every installed distribution
# (~10 ms). pydantic asks when it builds a model, so the models of this module are built
# with plugins off; the environment is put back at the end of the module.
_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
_plugins_setting = os.environ.get(_NO_PLUGINS)
os.environ[_NO_PLUGINS] = "__all__"

SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SERVICE_NAME_MAX = 63
DEFAULT_INHERIT_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# SPEC §3: set by the supervisor for every child; a secret of that name would be overwritten.
PROTOCOL_VARS = frozenset({"UNIFIED_SERVICE", "UNIFIED_INSTANCE", "NOTIFY_SOCKET",
                           "UNIFIED_HEARTBEAT_URL", "UNIFIED_TOKEN", "WATCHDOG_USEC",
                           "CHECKPOINT_DIR", "CHECKPOINT_KEEP", "LISTEN_FDS", "LISTEN_PID",
                           "LISTEN_FDNAMES"})


def check_service_name(name: str) -> str | None:
    """The problem with a service name, or None when it is valid."""
    if not SERVICE_NAME.fullmatch(name):
        return f"invalid service name {name!r}: use letters, digits, '_', '.', '-', " \
               f"starting with a letter or digit"
    if len(name) > SERVICE_NAME_MAX:
        return f"service name {name!r} is longer than {SERVICE_NAME_MAX} characters"
    return None


def base_dir(info: ValidationInfo | None) -> Path:
    context = (info.context if info else None) or {}
    return Path(context.get("base_dir") or os.getcwd())


def absolute(base: Path, value: str | os.PathLike[str]) -> str:
    """`value` made absolute against `base` (~ expanded, '..' folded, symlinks kept)."""
    return os.path.abspath(os.path.join(base, os.path.expanduser(os.fspath(value))))


Port = Annotated[int, Field(ge=1, le=65535)]
# "" would bind every interface: an unset ${HOST} must not open a port to the network
Host = Annotated[str, Field(min_length=1)]
PositiveDuration = Annotated[Duration, Field(gt=0)]


class Model(BaseModel):
    # Numbers written where a string is expected (api_key: 1234, argv items) become strings.
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


# --- supervisor -------------------------------------------------------------------------

class LogConfig(Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"
    max_bytes: Annotated[Size, Field(gt=0)] = 10_000_000
    backups: Annotated[int, Field(ge=0)] = 5

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


# What notify.events may name: the owner's event types, and the states (core/states.py)
ALERT_EVENTS = ("fatal", "freeze", "freeze_cleared", "circuit_open", "recovered", "restart",
                "probe", "reload", "host", "disabled", "pending", "building", "starting",
                "running", "stopping", "stopped", "exited", "backoff")


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {value!r}")
    return value


class WebhookAlerts(Model):
    webhooks: tuple[str, ...] = ()
    events: tuple[str, ...] = ("fatal", "freeze", "circuit_open", "recovered")

    @field_validator("webhooks")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(map(_http_url, value))

    @field_validator("events")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for event in value:
            if event not in ALERT_EVENTS:
                said = hint(event, ALERT_EVENTS) or f"; known: {', '.join(ALERT_EVENTS)}"
                raise ValueError(f"unknown event {event!r}{said}")
        return value


class HistoryConfig(Model):
    """Samples each service keeps for charts (api/history.py): one every `period`, `keep` long."""
    period: Annotated[Duration, Field(ge=0.1, le=3600)] = 5.0
    keep: Annotated[Duration, Field(gt=0, le=7 * 86400)] = 3600.0

    @model_validator(mode="after")
    def _bounded(self) -> HistoryConfig:
        if self.keep / self.period > 100_000:   # the ring is allocated whole: bound its memory
            raise ValueError("history.keep / history.period must be at most 100000 samples")
        return self


class SupervisorConfig(Model):
    host: Host = "127.0.0.1"
    port: Port = 8900
    api_key: str = ""
    # true: a loopback peer (socket address) naming a loopback Host reads GETs without the
    # key. Off by default: a local gateway or proxy is a loopback peer for the whole world.
    open_reads: bool = False
    state_dir: Path = Field(default=Path(".unified-system"), validate_default=True)
    shutdown_timeout: Duration = 60.0
    exit_on_critical_failure: bool = False
    watch_config: bool = False
    # Adopt and reap orphaned grandchildren (PR_SET_CHILD_SUBREAPER); None: only as PID 1.
    subreaper: bool | None = None
    # Sent to every service's process group when the supervisor itself dies, even by
    # SIGKILL, by a guard process (proc/lifeline.py). None: services outlive a killed
    # supervisor, as under supervisord or PM2, until the next start stops them.
    parent_death_signal: SignalName | None = "SIGTERM"
    log: LogConfig = LogConfig()
    notify: WebhookAlerts = WebhookAlerts()
    history: HistoryConfig = HistoryConfig()

    @field_validator("state_dir", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value == "":  # an unset ${STATE_DIR}: not the config's own directory
            raise ValueError("state_dir must not be empty")
        return value

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return Path(absolute(base_dir(info), value))


# --- probes -----------------------------------------------------------------------------

class HttpCheck(Model):
    url: str
    status: Annotated[int, Field(ge=100, le=599)] | None = None
    keep_alive: bool = True

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _http_url(value)


class TcpCheck(Model):
    port: Port
    host: Host = "127.0.0.1"


class ExecCheck(Model):
    command: Argv


class Probe(Model):
    """Exactly one of http / tcp / exec / notify, plus Kubernetes-style timing."""

    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    exec: ExecCheck | None = None
    notify: bool | None = None
    initial_delay: Duration = 0.0
    period: PositiveDuration = 1.0
    # Readiness only: the period while the service is starting, until its first success
    # (Docker's start_interval). Dependents wait on that first success.
    start_interval: PositiveDuration | None = None
    timeout: PositiveDuration = 1.0
    failure_threshold: Annotated[int, Field(ge=1)] = 3
    success_threshold: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _exactly_one(self) -> Probe:
        chosen = [k for k in ("http", "tcp", "exec") if getattr(self, k) is not None]
        chosen += ["notify"] if self.notify else []
        if len(chosen) != 1:
            got = f"got {' and '.join(chosen)}" if chosen else "got none"
            raise ValueError(f"a probe needs exactly one of http, tcp, exec, notify ({got})")
        return self

    @property
    def kind(self) -> Literal["http", "tcp", "exec", "notify"]:
        return probe_kind(self)  # type: ignore[return-value]


class _NoNotifyProbe(Probe):
    @field_validator("notify")
    @classmethod
    def _readiness_only(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("notify is allowed for readiness probes only")
        return value

    @field_validator("start_interval")
    @classmethod
    def _readiness_interval_only(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError("start_interval is for readiness probes only (a startup probe's "
                             "period times failure_threshold is its time budget)")
        return value


class StartupProbe(_NoNotifyProbe):
    pass


class LivenessProbe(_NoNotifyProbe):
    period: PositiveDuration = 5.0  # SPEC: liveness probes default to a 5s period


# --- service parts ----------------------------------------------------------------------

class Dependency(Model):
    condition: Literal["started", "healthy", "completed"] = "started"
    restart: bool = False


class Build(Model):
    command: Argv
    inputs: tuple[str, ...] = ()
    timeout: Duration = 600.0


class Heartbeat(Model):
    timeout: PositiveDuration
    hard_timeout: Duration | None = None

    @field_validator("hard_timeout")
    @classmethod
    def _after_soft(cls, value: float | None, info: ValidationInfo) -> float | None:
        soft = info.data.get("timeout")
        if value is not None and soft is not None and value <= soft:
            raise ValueError(f"hard_timeout ({value:g}s) must be greater than timeout ({soft:g}s)")
        return value


class Backoff(Model):
    initial: Duration = 1.0
    max: Duration = 60.0
    multiplier: Annotated[float, Field(ge=1.0)] = 2.0
    jitter: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max < self.initial:
            raise ValueError(f"max ({self.max:g}s) must not be less than initial ({self.initial:g}s)")
        return self


class Restart(Model):
    policy: Literal["always", "on-failure", "never"] = "on-failure"
    backoff: Backoff = Backoff()
    reset_after: Duration = 60.0
    max_restarts: Annotated[int, Field(ge=0)] = 5
    window: PositiveDuration = 60.0
    cooldown: Duration | None = 300.0


class Stop(Model):
    signal: SignalName = "SIGTERM"
    timeout: Duration = 10.0


class Limits(Model):
    max_memory: Annotated[Size, Field(gt=0)] | None = None


class Watch(Model):
    paths: tuple[Path, ...] = (Path("."),)  # resolved against the service's cwd
    ignore: tuple[str, ...] = ("*.pyc", "__pycache__", "node_modules", ".git")
    debounce: Duration = 0.5

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, os.PathLike)) else value


class Checkpoint(Model):
    keep: Annotated[int, Field(ge=1)] = 3


class Listen(Model):
    port: Port
    host: Host = "127.0.0.1"
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _fdname(cls, value: str | None) -> str | None:
        # LISTEN_FDNAMES is ':'-separated, so a name cannot hold ':'
        if value is not None and (not value or ":" in value or any(c.isspace() for c in value)):
            raise ValueError(f"listen name {value!r} must be non-empty, without ':' or spaces")
        return value


class Rollout(Model):
    """A rolling restart (held sockets or instances) proves the new incarnation before the old
    one is signalled: with a held socket an http or tcp probe may be answered by the OLD
    process, and some servers (gunicorn) send READY=1 before their app has loaded."""

    min_ready: Duration = 2.0                  # alive and ready this long (minReadySeconds)
    timeout: PositiveDuration | None = None    # to be proven; None: the reload start window


# --- service ----------------------------------------------------------------------------

class Service(Model):
    command: Argv
    cwd: Path = Field(default=Path("."), validate_default=True)
    env: dict[str, EnvValue] = {}
    env_file: tuple[Path, ...] = ()
    inherit_env: tuple[str, ...] = DEFAULT_INHERIT_ENV
    enabled: bool = True
    critical: bool = True
    depends_on: dict[str, Dependency] = {}
    build: Build | None = None
    readiness: Probe | None = None
    startup: StartupProbe | None = None
    liveness: LivenessProbe | None = None
    heartbeat: Heartbeat | None = None
    restart: Restart = Restart()
    stop: Stop = Stop()
    limits: Limits | None = None
    watch: Watch | None = None
    checkpoint: Checkpoint | None = None
    listen: tuple[Listen, ...] = ()
    instances: Annotated[int, Field(ge=1)] = 1
    rollout: Rollout = Rollout()
    # Names of secrets generated once into <state_dir>/secrets/NAME and given to the child
    # as env variables of that name: services listing one name share one value.
    secrets: tuple[str, ...] = ()

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"secret name {name!r} is not an environment variable name")
            if name in PROTOCOL_VARS:
                raise ValueError(f"secret name {name!r} is set by the supervisor (SPEC §3)")
        if len(set(value)) != len(value):
            raise ValueError("a secret is named twice")
        return value

    @model_validator(mode="after")
    def _secret_not_in_env(self) -> Service:
        both = sorted(set(self.secrets) & set(self.env))
        if both:  # which would win is a guess the config must not leave to the reader
            raise ValueError(f"{', '.join(both)} is both in env and in secrets")
        return self

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        """depends_on: [a, b] -> {a: {}, b: {}}; `db:` with no body -> the defaults."""
        if isinstance(data, dict):
            deps = data.get("depends_on")
            if isinstance(deps, list) and all(isinstance(d, str) for d in deps):
                data = {**data, "depends_on": {name: {} for name in deps}}
            elif isinstance(deps, dict):
                data = {**data, "depends_on": {k: {} if v is None else v for k, v in deps.items()}}
        return data

    @field_validator("cwd", mode="before")
    @classmethod
    def _cwd_given(cls, value: Any) -> Any:
        if value == "" or value is None:  # Path("") would silently mean "."
            raise ValueError("cwd is empty")
        return value

    @field_validator("env_file", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, os.PathLike)) else value

    @field_validator("cwd", "env_file")
    @classmethod
    def _absolute(cls, value: Path | tuple[Path, ...], info: ValidationInfo) -> Any:
        base = base_dir(info)
        if isinstance(value, tuple):
            return tuple(Path(absolute(base, p)) for p in value)
        return Path(absolute(base, value))

    @field_validator("watch")
    @classmethod
    def _watch_in_cwd(cls, value: Watch | None, info: ValidationInfo) -> Watch | None:
        if value is None or "cwd" not in info.data:
            return value
        cwd = info.data["cwd"]
        return value.model_copy(update={"paths": tuple(Path(absolute(cwd, p))
                                                       for p in value.paths)})


class Config(Model):
    version: Literal[1] = 1
    # Validated from {} so the default state_dir resolves against the config's directory.
    supervisor: SupervisorConfig = Field(default_factory=dict, validate_default=True)
    services: dict[str, Service]
    environments: dict[str, dict[str, Any]] = {}

    @field_validator("version", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # `version: ${V:-1}` is the string "1" after interpolation; numbers are coerced (§2)
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, Service]) -> dict[str, Service]:
        problems = [p for p in map(check_service_name, value) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def enabled(self) -> dict[str, Service]:
        return enabled_services(self)


if _plugins_setting is None:
    del os.environ[_NO_PLUGINS]
else:
    os.environ[_NO_PLUGINS] = _plugins_setting
