"""``python -m trading_bot``: the paper-trading loop under the supervisor.

Main thread: the trading loop (one tick per ``BOT_TICK_INTERVAL``), which also sends the
heartbeats, so a stuck loop is seen as a freeze. Side threads: the HTTP server and the
fill deliverer. Signals only set a flag and poke a wakeup pipe.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from unified_system.child import notify
from unified_system.child.checkpoint import Checkpoint

from .config import BotConfig, from_env
from .delivery import Deliverer
from .engine import Engine
from .http import make_server, serve_in_thread

if TYPE_CHECKING:
    from .bus_delivery import BusDeliverer

log = logging.getLogger("trading_bot")
DEFAULT_HEARTBEAT = 2.0  # seconds, when the supervisor sets no WATCHDOG_USEC
FALLBACK_CHECKPOINT_DIR = "./data/trading-bot"


class Bot:
    def __init__(self, cfg: BotConfig):
        self.cfg = cfg
        directory = cfg.checkpoint_dir or FALLBACK_CHECKPOINT_DIR
        self.checkpoint = Checkpoint(directory)
        saved = self.checkpoint.load()
        if saved and saved.get("seed") != cfg.strategy.seed:
            # Mixing two seeds would break the replayable fill sequence: the checkpoint wins.
            log.warning("checkpoint has seed %s, BOT_SEED is %s: continuing the checkpoint",
                        saved.get("seed"), cfg.strategy.seed)
        self.engine = Engine(cfg.strategy, saved)
        self.resumed = saved is not None
        self.lock = threading.Lock()
        self.deliverer: Deliverer | BusDeliverer
        if cfg.nats_url:
            # Imported here: without NATS_URL (tests of the HTTP path) nats-py is not needed.
            from .bus_delivery import BusDeliverer
            self.deliverer = BusDeliverer(cfg.nats_url, lambda: self.engine.state, self.lock)
        else:
            self.deliverer = Deliverer(cfg.backend_url, lambda: self.engine.state, self.lock,
                                       token=cfg.ledger_token)
        self.stop_requested = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # -- signals: flag + wakeup fd, nothing else (no locks, no I/O in the handler) -----
    def install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            readable, _, _ = select.select([self._wake_r], [], [], seconds)
            if readable:
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass

    # -- state ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            summary = self.engine.summary()
        return {"service": "trading-bot", "mode": self.cfg.mode, **summary,
                "delivered": self.deliverer.delivered, "resumed": self.resumed,
                "transport": "bus" if self.cfg.nats_url else "http",
                "seed": self.engine.state["seed"]}

    def save(self) -> int:
        with self.lock:
            # A deep copy taken under the lock: the deliverer edits the outbox concurrently.
            data = json.loads(json.dumps(self.engine.state))
        return self.checkpoint.save(data)

    # -- the loop -------------------------------------------------------------------
    def run(self) -> int:
        server = make_server(self.cfg.host, self.cfg.port, self.snapshot,
                             next(iter(notify.listen_sockets()), None))
        serve_in_thread(server)
        log.info("paper trading on %s:%s, tick %.3fs, %s at tick %d, fills to %s",
                 *server.server_address[:2], self.cfg.tick_interval,
                 "resumed" if self.resumed else "fresh start", self.engine.state["tick"],
                 self.cfg.nats_url or self.cfg.backend_url)
        self.deliverer.start()
        self.deliverer.wake.set()  # deliver what the checkpoint left undelivered
        notify.ready(f"trading from tick {self.engine.state['tick']}")
        interval = notify.watchdog_interval() or DEFAULT_HEARTBEAT
        last_beat = float("-inf")
        next_tick = time.monotonic()
        try:
            while not self.stop_requested:
                now = time.monotonic()
                if now - last_beat >= interval:
                    notify.heartbeat()  # from the loop itself: a stuck loop goes quiet
                    last_beat = now
                if now < next_tick:
                    self._sleep(min(next_tick - now, interval))
                    continue
                # After a stall (SIGSTOP, a slow disk) resume the cadence instead of
                # firing every missed tick in a burst.
                next_tick = max(next_tick, now - self.cfg.tick_interval) + self.cfg.tick_interval
                with self.lock:
                    fill = self.engine.step()
                if fill is not None:
                    self.save()  # durable before it is posted: never lost, maybe re-sent
                    self.deliverer.wake.set()
                    log.info("fill %s %s %.4g @ %.4f", fill["fill_id"], fill["side"],
                             fill["quantity"], fill["price"])
        finally:
            notify.stopping()
            self.deliverer.stop()
            self.deliverer.drain_once()  # one last best-effort flush before exiting
            generation = self.save()
            server.shutdown()
            server.server_close()
            log.info("stopped at tick %d (checkpoint generation %d)",
                     self.engine.state["tick"], generation)
        return 0


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(levelname)s %(name)s %(message)s")
    try:
        cfg = from_env()
    except ValueError as exc:
        print(f"trading-bot: bad configuration: {exc}", file=sys.stderr)
        return 2
    if not cfg.enabled:
        print("trading-bot: BOT_ENABLED is false; nothing to do", file=sys.stderr)
        return 0
    if cfg.mode != "paper":
        print(f"trading-bot: TRADING_MODE={cfg.mode!r} refused: no live broker is implemented;"
              " only TRADING_MODE=paper is supported", file=sys.stderr)
        return 2
    bot = Bot(cfg)
    bot.install_signals()
    return bot.run()


if __name__ == "__main__":
    sys.exit(main())
