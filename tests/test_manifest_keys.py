"""The golden file of every stage's manifest keys: the typed summary and metrics each
strate writes and reads (its `artifact.py`). A renamed, added or removed metric changes
`tests/golden/manifest_keys.txt`, so it is a deliberate change: regenerate the file with
`CHAOS_UPDATE_GOLDEN=1 pytest tests/test_manifest_keys.py` and commit it with the change.

Keys are dotted paths; `*` stands for a key chosen by the data (an asset, a series), `[]`
for the items of a list, `?` marks an optional value."""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import types
import typing

GOLDEN = pathlib.Path(__file__).parent / "golden" / "manifest_keys.txt"

# (artifact kind, module, summary class, metrics class)
ARTIFACTS = (
    ("dataset", "strates.data.artifact", "Summary", "Metrics"),
    ("tokenizer", "strates.fsq.artifact", "TokenizerSummary", "TokenizerMetrics"),
    ("tokens", "strates.fsq.artifact", "TokensSummary", "TokensMetrics"),
    ("jepa", "strates.jepa.artifact", "Summary", "Metrics"),
    ("cfm", "strates.cfm.artifact", "Summary", "Metrics"),
    ("agent", "strates.agent.artifact", "Summary", "Metrics"),
    ("multiverse", "strates.multiverse.artifact", "Summary", "Metrics"),
    ("multiverse-futures", "strates.multiverse.artifact", "FuturesSummary", "FuturesMetrics"),
    ("report", "strates.report.artifact", "Summary", "Metrics"),
    ("bench", "strates.bench.artifact", "Summary", "Metrics"),
    ("bench-signal", "strates.bench.signal_artifact", "Summary", "Metrics"),
    ("worldmodels", "strates.worldmodels.artifact", "Summary", "Metrics"),
    ("dream", "strates.worldmodels.dream", "Summary", "Metrics"),
)


def _name(tp: typing.Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _walk(tp: typing.Any, path: str) -> typing.Iterator[str]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
            yield from _walk(args[0], f"{path}?")
            return
        yield f"{path}: {' | '.join(_name(a) for a in args)}?"
        return
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            yield from _walk(hints[f.name], f"{path}.{f.name}" if path else f.name)
        return
    if origin is dict:
        _, value = typing.get_args(tp)
        yield from _walk(value, f"{path}.*")
        return
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
            yield from _walk(args[0], f"{path}[]")
            return
    yield f"{path}: {_name(origin or tp) if origin is not tuple else str(tp).replace('typing.', '')}"


def keys() -> str:
    lines = []
    for kind, module, summary, metrics in ARTIFACTS:
        mod = importlib.import_module(module)
        for part, cls in (("summary", summary), ("metrics", metrics)):
            lines += [f"{kind}.{part}.{line}" for line in _walk(getattr(mod, cls), "")]
    return "\n".join(lines) + "\n"


def test_manifest_keys_match_the_golden_file():
    now = keys()
    if os.environ.get("CHAOS_UPDATE_GOLDEN"):
        GOLDEN.write_text(now)
    assert GOLDEN.read_text() == now, (
        "a stage's manifest keys changed; if on purpose, regenerate tests/golden/manifest_keys.txt with "
        "CHAOS_UPDATE_GOLDEN=1 pytest tests/test_manifest_keys.py and commit it")


@dataclasses.dataclass(frozen=True)
class _Row:
    bps: float


@dataclasses.dataclass(frozen=True)
class _Top:
    rows: tuple[_Row, ...]
    per_asset: dict[str, _Row]
    best: _Row | None = None
    note: str | None = None
    levels: tuple[int, ...] = ()


def test_the_walk_sees_nesting_optionals_and_lists():
    assert list(_walk(_Top, "")) == ["rows[].bps: float", "per_asset.*.bps: float", "best?.bps: float", "note: str?",
                                     "levels: tuple[int, ...]"]
