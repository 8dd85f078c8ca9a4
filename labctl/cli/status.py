"""The CLI's :class:`~labctl.progress.Progress`: ``status.start("Preparing nodes")`` … ``status.end(True)``.

Like kind's status: on a terminal a spinner that turns into ``✓``/``✗`` lines; in a log
or CI, plain `` • step ...`` lines; nothing under ``--quiet``. Library code reports
through this object and never prints.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.status import Status as Spinner


class Status:
    """Progress on the terminal (rich spinner) or as plain lines in a log."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._message: str | None = None
        self._started = 0.0
        self._spinner: Spinner | None = None

    def start(self, message: str) -> None:
        """Begin a step (ending the previous one as successful)."""
        if self._message is not None:
            self.end(True)
        self._message = message
        self._started = time.monotonic()
        if self.quiet:
            return
        if self.console.is_terminal:
            self._spinner = self.console.status(f" {message} ...", spinner="dots")
            self._spinner.start()
        else:
            self.console.print(f" • {message} ...", highlight=False)

    def update(self, detail: str) -> None:
        """Show what the current step is doing now (only on a terminal)."""
        if self._spinner is not None and self._message:
            self._spinner.update(f" {self._message} ... [dim]{detail}[/dim]")

    def end(self, ok: bool) -> None:
        if self._message is None:
            return
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        if not self.quiet:
            took = time.monotonic() - self._started
            mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
            self.console.print(f" {mark} {self._message} [dim]({took:.1f}s)[/dim]", highlight=False)
        self._message = None
