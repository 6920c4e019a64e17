"""The terminal UI: a live service table, the selected service's sparklines and log, the
supervisor's event stream, and keys to act, each confirmed first."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import httpx
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Label, RichLog, Sparkline, Static

from unified_system.client import _last_exit, _memory, _uptime
from unified_system.tui.feed import Feed, describe

COLUMNS = ("NAME", "STATE", "READY", "HEALTH", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "LAST EXIT")
POLL = 1.0
LOG_LINES = 200


class Confirm(ModalScreen[bool]):
    """Yes or no before anything changes: y / n, Enter on a button, Escape for no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    #dialog { width: 60; height: auto; border: thick $warning; padding: 1 2; background: $surface; }
    #buttons { height: auto; margin-top: 1; }
    Button { margin-right: 2; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()   # the safe answer has the focus

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Top(App[None]):
    TITLE = "unified-system top"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "act('start')", "start"),
        Binding("x", "act('stop')", "stop"),
        Binding("r", "act('restart')", "restart"),
        Binding("R", "act('reload')", "reload config"),
        Binding("q", "quit", "quit"),
    ]
    DEFAULT_CSS = """
    #services { height: 1fr; min-height: 6; }
    #middle { height: 12; }
    #charts { width: 40; border: round $primary; padding: 0 1; }
    #charts Sparkline { height: 3; margin-bottom: 1; }
    #events { width: 1fr; border: round $primary; }
    #log { height: 1fr; border: round $primary; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, feed: Feed) -> None:
        super().__init__()
        self.feed = feed
        self.names: list[str] = []
        self.selected: str | None = None
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        table: DataTable[str] = DataTable(id="services", cursor_type="row", zebra_stripes=True)
        table.border_title = "services"
        yield table
        with Horizontal(id="middle"):
            with Vertical(id="charts"):
                yield Label("CPU %", id="cpu-label")
                yield Sparkline([], id="cpu")
                yield Label("memory", id="rss-label")
                yield Sparkline([], id="rss")
            events = RichLog(id="events", max_lines=500, wrap=True)
            events.border_title = "events"
            yield events
        log = RichLog(id="log", max_lines=2000, wrap=False)
        log.border_title = "log"
        yield log
        yield Static(f"connecting to {self.feed.url}", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.feed.url
        self.query_one("#charts").border_title = "selected service"
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.poll()
        self.set_interval(POLL, self.poll)
        self.follow()

    def on_unmount(self) -> None:
        self._stop.set()

    # -- reading -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll")
    def poll(self) -> None:
        try:
            services = self.feed.services()
            name = self.selected or (services[0]["name"] if services else None)
            lines = self.feed.logs(name, LOG_LINES) if name else []
        except httpx.HTTPError as exc:
            self._from_thread(self.say, f"{self.feed.url}: {type(exc).__name__}: {exc}")
            return
        self._from_thread(self.show, services, name, lines)

    @work(exclusive=True, group="events")
    async def follow(self) -> None:
        await self.feed.follow_events(self.add_event, self.say)

    def _from_thread(self, fn: Any, *args: Any) -> None:
        if self._stop.is_set():
            return
        try:
            self.call_from_thread(fn, *args)
        except RuntimeError:   # the app is closing
            self._stop.set()

    def show(self, services: list[dict[str, Any]], name: str | None, lines: list[str]) -> None:
        table = self.query_one(DataTable)
        self.names = [s["name"] for s in services]
        keep = self.selected if self.selected in self.names else (self.names[0] if self.names else None)
        table.clear()
        for s in services:
            table.add_row(s["name"], s["state"], "yes" if s.get("ready") else "no",
                          str(s.get("health") or "-"), str(s.get("pid") or "-"),
                          _uptime(s.get("uptime_seconds")), str(s.get("restarts", 0)),
                          f"{float(s.get('cpu_percent') or 0):.1f}", _memory(s.get("memory_rss_bytes")),
                          _last_exit(s.get("last_exit")), key=s["name"])
        if keep is not None:
            table.move_cursor(row=self.names.index(keep), animate=False)
        self.selected = keep
        series = self.feed.series.get(keep or "")
        if series is not None:
            self.query_one("#cpu", Sparkline).data = list(series.cpu)
            self.query_one("#rss", Sparkline).data = list(series.rss)
            self.query_one("#cpu-label", Label).update(f"CPU {series.cpu[-1]:.1f} %")
            self.query_one("#rss-label", Label).update(f"memory {_memory(int(series.rss[-1]))}")
            self.query_one("#charts").border_title = keep
        if name == keep:
            log = self.query_one("#log", RichLog)
            log.border_title = f"log: {keep}"
            log.clear()
            log.write("\n".join(lines[-LOG_LINES:]) or "(no output yet)")
        self.say(f"{self.feed.url}: {len(services)} services")

    def add_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "sample":   # chart data every few seconds, not an event
            return
        self.query_one("#events", RichLog).write(describe(event))

    def say(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key is not None else None
        if name and name != self.selected:
            self.selected = name
            self.poll()

    # -- acting ------------------------------------------------------------------------
    def action_act(self, verb: str) -> None:
        name = self.selected
        if verb != "reload" and name is None:
            return
        question = "Reload the config file and apply the difference?" if verb == "reload" \
            else f"{verb.capitalize()} {name}?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.act(verb, name)
        self.push_screen(Confirm(question), answered)

    @work(thread=True, group="act")
    def act(self, verb: str, name: str | None) -> None:
        try:
            said = self.feed.act(verb, name)
        except httpx.HTTPError as exc:
            said = f"{verb} failed: {type(exc).__name__}: {exc}"
        self._from_thread(self.say, said)
        self._from_thread(self.notify, said)
        self._from_thread(self.poll)
