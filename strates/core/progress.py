"""How the library reports progress without knowing who listens.

A stage takes a `Reporter`; the CLI passes one that draws rich progress bars on a terminal
and plain lines otherwise, tests and library callers get `NullReporter` by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Update(Protocol):
    def __call__(self, amount: float = 1, *, status: str | None = None) -> None: ...


def ignore_update(amount: float = 1, *, status: str | None = None) -> None:
    return None


class Reporter(Protocol):
    def info(self, message: str) -> None:
        """A sentence worth telling the user (what was detected, done or assumed)."""
        ...

    def task(self, description: str, total: float | None = None) -> contextlib.AbstractContextManager[Update]:
        """A unit of work; the yielded `update(amount=1, *, status=None)` advances it and
        shows `status` (e.g. the current loss) beside it."""
        ...


class NullReporter:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Update]:
        yield ignore_update


def training_log(update: Update, *names: str):
    """An `on_log(step, metrics)` for the training loop that advances `update` to `step` and
    shows the named metrics (default: the loss) as its status."""
    names = names or ("loss",)
    done = [0]

    def on_log(step: int, metrics: dict) -> None:
        update(step - done[0], status=" ".join(f"{n} {metrics[n]:.4f}" for n in names if n in metrics))
        done[0] = step

    return on_log
