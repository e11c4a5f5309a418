"""Small helpers shared by tests that write input files and compare UTC times."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)
