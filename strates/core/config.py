"""Frozen-dataclass configs: to plain dicts (for TOML and hashing), back, and `--set` overrides.

Every stage's config is a frozen dataclass whose `__post_init__` rejects bad values with a
message that shows them. Presets are plain dicts of field overrides. `--set a.b=value`
parses `value` as a TOML literal (`3`, `0.5`, `true`, `"text"`, `[1, 2]`), falling back to a
bare string, so `--set split=0.6,0.2,0.2` and `--set model.width=128` both work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import pathlib
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from strates.core.errors import ConfigError


def to_dict(value: Any) -> Any:
    """A JSON/TOML-friendly copy: dataclasses to dicts, tuples to lists, paths to strings.

    `None` fields are dropped (TOML has no null); enums become their values.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = to_dict(getattr(value, f.name))
            if v is not None:
                out[f.name] = v
        return out
    if isinstance(value, Mapping):
        return {str(k): to_dict(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_dict(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def from_dict[C](cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a (nested) config dataclass from `to_dict` output; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(typing.cast(Any, cls))}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has no field(s) {', '.join(unknown)}",
            fix=f"valid fields: {', '.join(sorted(names))}",
            field=unknown[0],
        )
    kwargs = {name: _coerce(hints[name], data[name], name) for name in data}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, name) if len(args) == 1 else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_dict(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return choice(tp, value, name)
    if origin is dict and isinstance(value, Mapping):
        args = typing.get_args(tp)
        inner = args[1] if len(args) == 2 else Any
        return {k: _coerce(inner, v, f"{name}.{k}") for k, v in value.items()}
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if (len(args) == 2 and args[1] is Ellipsis) or len(args) == 1:
            return tuple(_coerce(args[0], v, name) for v in value)
        if args and len(args) == len(value):
            return tuple(_coerce(a, v, name) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is dt.timedelta and isinstance(value, (int, float)):
        return dt.timedelta(seconds=value)
    return value


def choice[E: enum.Enum](kind: type[E], value: Any, field: str) -> E:
    """`value` as a member of the enum `kind` (a `StrEnum` of the valid choices); anything
    else is a ConfigError (exit 2) that lists the valid values."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(str(m.value) for m in kind)
        raise ConfigError(f"{field} must be one of {valid}; got {value!r}", fix=f"choose one of: {valid}",
                          field=field) from None


def coerce_choices(config: Any, prefix: str = "") -> None:
    """Call from a config dataclass's `__post_init__`: every field typed as an enum (or an
    optional one) is turned into its member, so `Config(kind="mppi")` works and a typo
    fails at construction (ConfigError, exit 2) naming the field and the valid values."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        tp, value = hints[f.name], getattr(config, f.name)
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
        if value is not None and isinstance(tp, type) and issubclass(tp, enum.Enum):
            object.__setattr__(config, f.name, choice(tp, value, prefix + f.name))


def parse_value(text: str) -> Any:
    """Parse an override value as a TOML literal, or keep it as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides[C](config: C, overrides: Iterable[str]) -> C:
    """Return `config` with `section.field=value` overrides applied (nested dataclasses).

    All overrides are applied together, so a combination that is only valid as a whole
    (e.g. fewer steps and a shorter warm-up) is checked once, as a whole.
    """
    updates: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"override {item!r} is not of the form key=value",
                fix="write it as --set section.field=value, e.g. --set train.steps=200",
            )
        updates[key.strip()] = parse_value(raw.strip())
    return _apply(config, updates)


def merge_presets[C](base: C, presets: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> C:
    """Apply named presets in order (later ones win); each is a dict of dotted overrides."""
    config = base
    for name in names:
        if name not in presets:
            raise ConfigError(
                f"unknown preset {name!r}", fix=f"choose one of: {', '.join(presets)}"
            )
        config = _apply(config, presets[name])
    return config


def _apply[C](config: C, updates: Mapping[str, Any]) -> C:
    nested: dict[str, Any] = {}
    for key, value in updates.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set {key!r}: {part!r} is given a value and sub-fields", field=key)
        node[leaf] = value
    return _replace(config, nested, prefix="")


def _replace(config: Any, nested: Mapping[str, Any], *, prefix: str) -> Any:
    if not dataclasses.is_dataclass(config):
        raise ConfigError(f"cannot set {prefix.rstrip('.')!r}.*: it is not a section", field=prefix.rstrip("."))
    names = {f.name for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for name, value in nested.items():
        full = prefix + name
        if name not in names:
            raise ConfigError(
                f"unknown config field {full!r}",
                fix=f"fields here: {', '.join(sorted(names))}",
                field=full,
            )
        if isinstance(value, dict) and dataclasses.is_dataclass(getattr(config, name)):
            changes[name] = _replace(getattr(config, name), value, prefix=full + ".")
        elif isinstance(value, dict):
            raise ConfigError(f"cannot set {full}.{next(iter(value))!r}: {full!r} is not a section", field=full)
        else:
            changes[name] = _coerce(hints[name], value, full)
    return dataclasses.replace(typing.cast(Any, config), **changes)
