"""How the library reports progress without knowing who listens.

A stage takes a `Reporter`; the CLI passes one that draws rich progress bars on a terminal
and plain lines otherwise, tests and library callers get `NullReporter` by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class Reporter(Protocol):
    def info(self, message: str) -> None:
        """A sentence worth telling the user (what was detected, done or assumed)."""

    def task(self, description: str, total: float | None = None) -> contextlib.AbstractContextManager[Callable[[float], None]]:
        """A unit of work; the yielded callable advances it by the given amount."""


class NullReporter:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
        yield lambda amount=1: None
