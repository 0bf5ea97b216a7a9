"""Logging and progress bars.

Progress bars are rich bars on a terminal and nothing otherwise (CI, pipes, `--quiet`), so
logs stay readable. Use `progress(...)` around anything that can take over two seconds.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

_state = {"quiet": False}
console = Console(stderr=True)
logger = logging.getLogger("practicum")


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    _state["quiet"] = quiet
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger.handlers.clear()
    logger.addHandler(RichHandler(console=console, show_path=False, show_time=False, markup=False))
    logger.setLevel(level)
    logger.propagate = False


def bars_enabled() -> bool:
    return not _state["quiet"] and console.is_terminal


@contextmanager
def progress_bar(description: str, total: float | None):
    """Yield `advance(n=1)`; draws a bar only on a terminal and when not quiet."""
    if not bars_enabled():
        yield lambda n=1: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate `items` with a progress bar."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(description, total) as advance:
        for item in items:
            yield item
            advance()


def echo(message: str) -> None:
    """A result line for the user (stdout), shown even with --quiet."""
    print(message, file=sys.stdout, flush=True)
