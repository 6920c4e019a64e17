"""The real adapter of the core's port (core/ports.py `Effects`), and the one place that
wires proc/, probes/ and api/ together: the supervisor's resources, opened once per run
(state dir lock, logs, the OS seam, the notify socket, the probe pool, the control plane).
The owner calls into it; it never decides anything. It sits above proc/ and api/, which
import nothing of it, so neither package imports the other in a circle."""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from unified_system import logsetup
from unified_system.core.events import Barrier, Batch, BuildDone, Exited, Notify, NotifyRefused
from unified_system.core.policy import ExitStatus
from unified_system.core.ports import Facade, Link, SpawnError
from unified_system.core.secretstore import SecretStore
from unified_system.proc import leftovers
from unified_system.proc.childenv import build_env
from unified_system.proc.console import Console
from unified_system.proc.logfile import tail
from unified_system.proc.notify import Datagram, NotifyListener
from unified_system.proc.output import ServiceOutput
from unified_system.proc.quiet import Quiet, Summaries
from unified_system.proc.seam import ProcessSeam, Spawned
from unified_system.proc.which import which
from unified_system.redaction import secret_values
from unified_system.tokens import token_urlsafe

if TYPE_CHECKING:
    from unified_system.api.metrics import Metrics
    from unified_system.config.view import ConfigRecord, LoadedConfig
    from unified_system.core.unit import Unit
    from unified_system.proc.crashdumps import CrashDumps
    from unified_system.proc.sampler import Sampler
    from unified_system.proc.watcher import Watcher


_SHIM = (Path(__file__).resolve().parent / "proc" / "listenshim.py").read_text()


class AlreadyRunning(Exception):
    pass


LATE_MODULES = ("unified_system.api.metrics", "unified_system.api.server",
                "unified_system.proc.sampler")


class _Recorder:
    """Stands in for Metrics until open_late(): the first reconcile may count restarts
    (of services restored from state.json); each hook call is kept and replayed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, hook: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((hook, args))

    def replay(self, metrics: Any) -> None:
        for hook, args in self.calls:
            getattr(metrics, hook)(*args)


class Runtime:
    """The real `Effects` (core/ports.py). It is given the owner's `Link` (its door and the
    maps it replaces whole), never the Supervisor: it does, and never decides."""

    def __init__(self, link: Link, console: Console | None = None, verbose: bool = False) -> None:
        self.link = link
        cfg = link.config().supervisor
        self.state_dir: Path = Path(cfg.state_dir)
        self.log_dir = self.state_dir / "logs"
        self.console = console
        self.verbose = verbose               # `run --verbose`: read by open()
        self.summaries: Summaries | None = None
        self.tokens = {name: token_urlsafe(24) for name in link.config().services}
        self.secrets = SecretStore(self.state_dir / "secrets")
        self.environ = dict(os.environ)
        self.outputs: dict[str, ServiceOutput] = {}
        self.sockets: dict[str, tuple[tuple, list[socket.socket]]] = {}
        self._executables: dict[str, str] = {}
        self._resolved: dict[tuple[str, str, str], str] = {}
        self._pidfile: int | None = None
        self.seam: ProcessSeam
        self.notify: NotifyListener
        self.probes: Any = None
        self.metrics: Metrics | _Recorder
        # Opened after the first spawns (open_late, open_api): nothing in them is needed sooner.
        self.dumps: CrashDumps | None = None
        self._importer: threading.Thread | None = None
        self.sampler: Sampler | None = None
        self.watcher: Watcher | None = None
        self.control: Any = None
        self.runfile: str | None = None   # written once the API listens, removed at close

    @property
    def config(self) -> ConfigRecord:
        return self.link.config()

    @property
    def loaded(self) -> LoadedConfig:
        return self.link.loaded()

    # ------------------------------------------------------------------ open / close
    def open(self) -> None:
        """What the first spawns need. The rest waits for open_late(): starting 100 services
        should not wait on the imports of the API, metrics, file watching and sampling."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_pidfile()
        cfg = self.config.supervisor
        logsetup.configure(self.log_dir, cfg.log.level, cfg.log.format, cfg.log.max_bytes,
                           cfg.log.backups)
        self.hide_secrets()
        if self.console is None:
            self.console = Console()
        if not self.verbose:
            self.summaries = Summaries(self.console)
        width = self.label_width()
        for name, spec in self.config.services.items():
            self.add_service(name, width)
            if spec.enabled and spec.listen:
                try:  # hold the ports from the start: nothing else can take them meanwhile
                    self.sockets_for(name)
                except OSError as exc:
                    logsetup.get_logger().error("cannot bind listen sockets", service=name,
                                                error=str(exc))
        pdeathsig = cfg.parent_death_signal
        self.seam = ProcessSeam(getattr(signal, pdeathsig) if pdeathsig else None)
        subreaper = cfg.subreaper if cfg.subreaper is not None else os.getpid() == 1
        if subreaper:
            self.seam.become_subreaper()
        self.notify = NotifyListener(self.on_notify_datagrams, self.link.pid_map)
        self.notify.start()
        if any(s.readiness or s.liveness or s.startup for s in self.config.services.values()):
            from unified_system.probes.runner import ProbeRunner
            self.probes = ProbeRunner(self.seam, self.link.post)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker")
        self.metrics = _Recorder()  # prometheus_client loads after the first spawns
        if cfg.watch_config or any(s.watch for s in self.config.services.values()):
            self.open_watcher()  # before the first spawn: no change made meanwhile is missed

    def hide_secrets(self) -> None:
        """The config's secrets, hidden from the log and the console's echo of children's
        output from the first line on (the control plane adds a generated API key)."""
        control = self.control
        api_key = control.api_key if control is not None else self.config.supervisor.api_key
        # secret_values reads .runtime, .loaded and .config: the adapter's view, not the owner
        view = SimpleNamespace(runtime=self, loaded=self.loaded, config=self.config)
        logsetup.hide_values(tuple(secret_values(view, api_key or "")))
        if self.runfile is not None:   # also after each applied reload: the new config's stamps
            self.submit(self.publish_address)

    def open_watcher(self) -> None:
        """At start when something is watched; else when a reload adds the first watch."""
        from unified_system.proc.watcher import Watcher

        # The owner adds the services' watches (reloading.watch_services) once this returns.
        self.watcher = Watcher(self.link.post, always_ignore=[self.state_dir])
        if self.config.supervisor.watch_config:
            from unified_system.core.events import CONFIG_KEY
            env_file = self.loaded.path.parent / ".env"
            self.watcher.watch(CONFIG_KEY, [p for p in (self.loaded.path, env_file) if p.exists()], ())

    def open_late(self, then: Callable[[], None]) -> None:
        """Right after the first reconcile. Crash dumps open now; the modules of the rest
        (prometheus_client alone is ~40 ms) load on a thread, so the owner meanwhile keeps
        answering the first readiness events; `then` (posting LateImported) follows."""
        from unified_system.proc.crashdumps import CrashDumps

        self.dumps = CrashDumps(self.state_dir / "crashes", self.log_dir)

        def load() -> None:
            try:
                for module in LATE_MODULES:
                    importlib.import_module(module)
            finally:  # a failed import is raised again, on the owner, by open_api()
                then()

        self._importer = threading.Thread(target=load, name="late-imports", daemon=True)
        self._importer.start()

    @property
    def crash_dumps(self) -> CrashDumps:
        """Open from right after the first reconcile (open_late); exits are handled later."""
        if self.dumps is None:
            raise RuntimeError("crash dumps used before open_late()")
        return self.dumps

    def open_api(self, facade: Facade) -> None:
        """On the owner, when LateImported arrives: metrics, sampling, watching, the API."""
        from unified_system.api.metrics import Metrics
        from unified_system.api.server import ControlPlane
        from unified_system.proc.sampler import Sampler

        early, self.metrics = self.metrics, Metrics(facade)
        if isinstance(early, _Recorder):
            early.replay(self.metrics)
        self.sampler = Sampler(self.link.post, self.link.mem_watch, self.state_dir)
        self.sampler.start()
        self.control = ControlPlane(facade, self)
        self.control.start()
        self.publish_address()

    def publish_address(self) -> None:
        """The runtime file (runfile.py) a client command finds this API by, without YAML."""
        from unified_system import runfile

        cfg, loaded = self.config.supervisor, self.loaded
        if getattr(self.control, "front", None) is not None:   # listening
            self.runfile = runfile.publish(str(loaded.path), loaded.env_name,
                                           loaded.environ.get("NODE_ENV"), cfg.host, cfg.port,
                                           str(self.state_dir.resolve()), bool(cfg.api_key))

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
        if self.probes is not None:
            self.probes.close()
        if self.watcher is not None:
            self.watcher.close()
        if self._importer is not None:
            self._importer.join(timeout=10)  # never tear down under an import in progress
        if self.sampler is not None:   # open_api() ran
            self.sampler.close()
        if self.dumps is not None:     # open_late() ran
            self.dumps.close()
        self.worker.shutdown(wait=True, cancel_futures=True)
        if self.runfile is not None:   # after the worker: a rewrite it still had queued is done
            from unified_system.runfile import withdraw
            withdraw(self.runfile)
        self.notify.close()
        self.seam.close()
        for output in self.outputs.values():
            output.log.close()
        for _key, held in self.sockets.values():
            for sock in held:
                sock.close()
        logsetup.stop()
        if self.summaries is not None:
            self.summaries.close()
        if self.console is not None:
            self.console.close()
        if self._pidfile is not None:
            try:
                os.unlink(self.state_dir / "supervisor.pid")
            except FileNotFoundError:
                pass
            os.close(self._pidfile)

    def _lock_pidfile(self) -> None:
        path = self.state_dir / "supervisor.pid"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another supervisor (pid {holder}) is already running on state_dir "
                f"{self.state_dir}; stop it first, or use another state_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._pidfile = fd

    def label_width(self) -> int:
        """The width of the `name | ` console labels: the longest service name."""
        return max(map(len, self.config.services), default=0)

    def add_service(self, name: str, width: int | None = None) -> None:
        """Output sink and token for a service (at start, or added by a reload)."""
        cfg = self.config.supervisor
        width = self.label_width() if width is None else width
        if name not in self.tokens:  # a service added by a reload
            self.tokens[name] = token_urlsafe(24)
        for secret in self.link.config().services[name].secrets:
            self.secrets.get(secret)   # before any spawn: the scrubber knows every value
        console = self.console
        if console is None:
            raise RuntimeError("add_service() before open()")
        if name not in self.outputs:
            output = self.outputs[name] = ServiceOutput(
                self.log_dir / f"{name}.log", cfg.log.max_bytes, cfg.log.backups,
                console, console.prefix(name, len(self.outputs), width))
            if self.summaries is not None:
                output.quiet = Quiet(self.summaries, output.prefix, str(output.log.path))

    def reset_service(self, name: str) -> None:
        """A reload changed the service: its command may resolve differently now."""
        self._executables.pop(name, None)
        self._resolved.clear()

    def systemd_watchdog_interval(self) -> float | None:
        """Half of WATCHDOG_USEC, when systemd asked us (and not another pid) for pings."""
        usec, pid = self.environ.get("WATCHDOG_USEC"), self.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return max(0.01, int(usec) / 2_000_000)
        except ValueError:
            return None

    def signal_systemd(self, message: str) -> None:
        """sd_notify to our own manager (systemd), when there is one."""
        target = self.environ.get("NOTIFY_SOCKET")
        if not target:
            return
        if target.startswith("@"):
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), target)
        except OSError:
            pass  # a manager that does not listen must never stall the owner

    # ------------------------------------------------------------------ children
    def child_env(self, unit: Unit, inc: int, files: bool = True) -> dict[str, str]:
        cfg = self.config.supervisor
        spec = unit.spec
        protocol = {
            "UNIFIED_SERVICE": unit.service,
            "UNIFIED_INSTANCE": str(unit.index),
            "NOTIFY_SOCKET": self.notify.path,
            "UNIFIED_HEARTBEAT_URL":
                f"http://{cfg.host}:{cfg.port}/api/services/{unit.service}/heartbeat",
            "UNIFIED_TOKEN": self.tokens[unit.service],
        }
        if spec.heartbeat is not None:
            protocol["WATCHDOG_USEC"] = str(int(spec.heartbeat.timeout * 1_000_000))
        if spec.checkpoint is not None:
            directory = self.state_dir / "checkpoints" / unit.service
            directory.mkdir(parents=True, exist_ok=True)
            protocol["CHECKPOINT_DIR"] = str(directory)
            protocol["CHECKPOINT_KEEP"] = str(spec.checkpoint.keep)
        env = spec.env
        if spec.secrets:
            env = {**env, **{name: self.secrets.get(name) for name in spec.secrets}}
        return build_env(spec.inherit_env, spec.env_file if files else (), env,
                         self.environ, protocol)

    def executable(self, unit: Unit, env: dict[str, str]) -> str:
        argv0 = unit.spec.command[0]
        if unit.service not in self._executables:
            # Services often share a program (python, node): resolve each one once.
            key = (argv0, str(unit.spec.cwd), env.get("PATH", os.defpath))
            found = self._resolved.get(key)
            if found is None:
                if "/" in argv0:
                    path = Path(unit.spec.cwd, argv0)
                    found = str(path) if os.access(path, os.X_OK) and path.is_file() else None
                else:
                    found = which(argv0, path=key[2])
                if found is None:  # looked for again next time: it may be installed meanwhile
                    raise SpawnError(f"cannot execute {argv0!r}: not found on the service's PATH")
                self._resolved[key] = found
            self._executables[unit.service] = found
        return self._executables[unit.service]

    def spawn(self, unit: Unit, inc: int) -> Spawned:
        env = self.child_env(unit, inc)
        argv, executable = list(unit.spec.command), self.executable(unit, env)
        try:
            held = self.sockets_for(unit.service)
        except OSError as exc:
            raise SpawnError(f"cannot bind the service's listen sockets: {exc.strerror or exc}") from exc
        if held:  # through the shim, so LISTEN_PID is the exec'd program's own pid
            fds = [sock.fileno() for sock in held]
            names = ":".join(claim.name or f"{unit.service}{i}" for i, claim in enumerate(unit.spec.listen))
            argv = [sys.executable, "-S", "-c", _SHIM, ",".join(map(str, fds)), names, "--",
                    executable, *argv]
            executable = sys.executable
        else:
            fds = []
        try:
            return self.seam.spawn(argv, executable=executable, cwd=unit.spec.cwd, env=env,
                                   sink=self.outputs[unit.service], pass_fds=fds,
                                   kill_after=unit.spec.stop.timeout,
                                   on_exit=lambda status: self.link.post(Exited(inc, status)))
        except SpawnError as exc:  # ENOENT for a script that exists: its #! names nothing
            why = self.missing_interpreter(unit)
            raise SpawnError(f"{exc} ({why})" if why else str(exc)) from exc

    def explain_not_startable(self, unit: Unit) -> str:
        """Why exec failed, in plain words: a missing #! interpreter, else the log's last line."""
        missing = self.missing_interpreter(unit)
        if missing:
            return missing
        said = tail(self.log_dir / f"{unit.service}.log", 1)
        return said[0][:300] if said else ""

    def missing_interpreter(self, unit: Unit) -> str | None:
        """The classic exec failure: a script whose #! names a program that is not there."""
        path = self._executables.get(unit.service)
        try:
            with open(path or "", "rb") as fh:
                first = fh.readline(256)
            if first.startswith(b"#!"):
                interpreter = first[2:].decode(errors="replace").split()[0]
                if not which(interpreter) and not os.path.exists(interpreter):
                    return f"its #! interpreter {interpreter} does not exist"
        except (OSError, IndexError):
            pass
        return None

    def sockets_for(self, name: str) -> list[socket.socket]:
        """The service's listening sockets, bound once and held across its restarts."""
        spec = self.config.services.get(name)
        if spec is None or not spec.listen:
            return []
        key = tuple((claim.host, claim.port) for claim in spec.listen)
        held = self.sockets.get(name)
        if held is None or held[0] != key:
            if held is not None:
                for sock in held[1]:
                    sock.close()
            bound = []
            for claim in spec.listen:
                family = socket.AF_INET6 if ":" in claim.host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((claim.host, claim.port))
                sock.listen(1024)
                bound.append(sock)
            self.sockets[name] = held = (key, bound)
        return held[1]

    def held_ports(self) -> set[tuple[str, int]]:
        """(service, port) of every listen socket held now."""
        return {(name, port) for name, (key, _) in self.sockets.items() for _host, port in key}

    def release_sockets(self, name: str) -> None:
        """A removed service's ports are free again once its last process is gone."""
        for sock in self.sockets.pop(name, ((), []))[1]:
            sock.close()

    def console_line(self, name: str, text: str) -> None:
        self.outputs[name].console_line(text)

    def console_last_lines(self, name: str, lines: list[str]) -> None:
        output = self.outputs[name]
        if output.quiet is not None:   # under --verbose they were on the console already
            for line in lines:
                output.console_line(f"  {line}")

    def remove_service(self, name: str) -> None:
        """A reload removed the service and its last process is gone: let go of all that
        was kept for it, or every add-then-remove cycle leaks (issue 16: its log's fd)."""
        self.release_sockets(name)
        self.tokens.pop(name, None)
        self._executables.pop(name, None)
        output = self.outputs.pop(name, None)
        if output is not None:  # closed by the I/O thread, the log's only writer
            self.seam.release_sink(output, output.log.close)
        self.metrics.forget(name)
        if self.dumps is not None:
            self.dumps.forget(name)
        if self.control is not None:
            self.control.forget(name)

    def spawn_build(self, name: str, digest: str, run: int) -> Spawned:
        spec = self.config.services[name]
        env = build_env(spec.inherit_env, spec.env_file, spec.env, self.environ,
                        {"UNIFIED_SERVICE": name})
        build = spec.build

        def on_exit(status: ExitStatus) -> None:  # on the I/O thread: it only posts
            self.link.post(BuildDone(name, status.ok, status.describe(), digest, False, run))

        argv0 = build.command[0]
        executable = argv0 if "/" in argv0 else which(argv0, path=env.get("PATH", os.defpath))
        if executable is None:
            raise SpawnError(f"build command {argv0!r} not found on the service's PATH")
        return self.seam.spawn(build.command, executable=executable, cwd=spec.cwd, env=env,
                               sink=self.outputs[name].build_sink(), on_exit=on_exit)

    def watch_probe(self, unit: Unit, role: str, probe: Any, delay: float) -> None:
        env: dict[str, str] = {}
        if probe.exec is not None:
            try:
                env = self.child_env(unit, unit.inc)
            except SpawnError:  # the service got its env files when it started; the probe
                env = self.child_env(unit, unit.inc, files=False)  # makes do without
        if self.probes is None:  # the first probed service came with a reload: None crashed the owner
            from unified_system.probes.runner import ProbeRunner
            self.probes = ProbeRunner(self.seam, self.link.post)
        from unified_system.probes.plans import Plan

        self.probes.watch(Plan(unit.inc, role, probe, delay, unit.service, unit.spec.cwd, env))

    def forget_probes(self, inc: int, role: str | None = None) -> None:
        if self.probes is not None:
            self.probes.forget(inc, role)

    # ------------------------------------------------------------------ the rest of Effects
    def signal_group(self, pgid: int, sig: int) -> bool:
        return self.seam.signal_group(pgid, sig)

    def signal_pid(self, pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def group_alive(self, pgid: int) -> bool:
        return self.seam.group_alive(pgid)

    def watch_signals(self, signums: Any, on_signal: Callable[[int], None]) -> dict[int, Any]:
        return self.seam.watch_signals(signums, on_signal)

    def run_helper(self, argv: Any, *, timeout: float, env: Any = None,
                   cwd: str | None = None) -> Any:
        return self.seam.run(argv, timeout=timeout, env=env, cwd=cwd)

    def submit(self, job: Callable[[], None]) -> object:
        return self.worker.submit(job)

    def stop_leftovers(self, found: list[dict[str, Any]], timeout: float, log: Any) -> int:
        return leftovers.stop_leftovers(found, timeout, log)

    def find_leftovers(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        return leftovers.leftovers(state)

    def create_time(self, pid: int) -> float | None:
        return leftovers.create_time(pid)

    def process_state(self, pid: int) -> str | None:
        from unified_system.proc import inspect as procs  # psutil: not on the start-up path

        return procs.proc_state(pid)

    def cpu_seconds(self, pid: int) -> float | None:
        from unified_system.proc import inspect as procs

        return procs.cpu_seconds(pid)

    def inspect_frozen(self, pid: int, cpu: float | None) -> dict[str, Any]:
        from unified_system.proc import inspect as procs

        return procs.inspect_frozen(pid, cpu, self.seam.run)

    def service_line(self, name: str, text: str) -> None:
        self.outputs[name].write_line(text)

    def log_tail(self, name: str, lines: int) -> list[str]:
        return tail(self.log_dir / f"{name}.log", lines)

    def release_barrier(self, fd: int) -> None:
        self.notify.release(fd)

    def on_notify_datagrams(self, batch: list[tuple[Datagram, tuple[int, int] | None]]) -> None:
        """Called on the notify thread with each datagram's sender already attributed (at
        arrival, from its kernel credentials): hand them over to the owner, in order."""
        events: list[object] = []
        for datagram, found in batch:
            if found is None:
                events.append(NotifyRefused(datagram.pid, tuple(k[:64] for k, _ in datagram.fields)[:8],
                                            self.notify.senders.refusals_capped))
            elif datagram.barrier is not None:
                events.append(Barrier(datagram.barrier))
            else:
                events.append(Notify(found[1], datagram.pid, datagram.fields, datagram.at))
        self.link.post(Batch(tuple(events)) if len(events) > 1 else events[0])
