"""One exception class per kind of failure, each mapped to a documented exit code.

Every message says what was wrong (with the offending values) and how to fix it. The CLI
prints the message and exits with `exit_code`; library callers catch `ChaosError`.

Exit codes (also in README.md):

| code | meaning |
| ---- | ------- |
| 0    | success |
| 1    | unexpected internal error (a bug: please report it with the traceback from `-v`) |
| 2    | bad input or usage: invalid file, option or config value |
| 3    | a referenced artifact does not exist or is ambiguous |
| 4    | the topology asked for does not match the devices present |
| 5    | workspace storage failure (cannot read or write the workspace) |
| 6    | training stopped: loss or gradients not finite |
| 130  | interrupted (Ctrl-C) |
"""

from __future__ import annotations

OK = 0
INTERNAL = 1
BAD_INPUT = 2
MISSING_ARTIFACT = 3
TOPOLOGY_MISMATCH = 4
STORAGE = 5
NON_FINITE = 6
INTERRUPTED = 130


class ChaosError(Exception):
    """Base class: a failure the user can act on. `fix` says how."""

    exit_code = INTERNAL

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


class InvalidInput(ChaosError):
    """A source file, option or config value breaks a rule.

    `location` names where (file, row or timestamp, column) and `rule` names which rule,
    so scripts and tests can tell the failures apart.
    """

    exit_code = BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        fix: str | None = None,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ):
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"column '{column}'" if column else "",
            )
            if part
        )
        full = f"[{rule}] {message}" + (f" ({where})" if where else "")
        super().__init__(full, fix=fix)
        self.detail = message  # without the rule and location, which are fields
        self.rule = rule
        self.file = file
        self.row = row
        self.column = column


class ConfigError(InvalidInput):
    """A config value or a combination of values is invalid."""

    def __init__(self, message: str, *, fix: str | None = None, field: str | None = None):
        super().__init__(message, rule="config", fix=fix, column=field)


class ArtifactNotFound(ChaosError):
    """A reference (`latest`, an id or a prefix) matches no artifact, or several."""

    exit_code = MISSING_ARTIFACT


class TopologyMismatch(ChaosError):
    """The topology asked for cannot be built from the devices present."""

    exit_code = TOPOLOGY_MISMATCH


class StorageError(ChaosError):
    """The workspace cannot be read or written (permissions, network, bucket)."""

    exit_code = STORAGE


class NonFiniteError(ChaosError):
    """Training stopped: the loss or the gradients were not finite for several steps in a row."""

    exit_code = NON_FINITE
