from __future__ import annotations

import dataclasses

import pytest

from strates.core.config import apply_overrides, from_dict, merge_presets, parse_value, to_dict
from strates.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Model:
    width: int = 64
    rate: float = 0.1
    levels: tuple[int, ...] = (8, 5, 5, 5)


@dataclasses.dataclass(frozen=True)
class Cfg:
    name: str = "x"
    model: Model = Model()
    note: str | None = None


def test_roundtrip_through_dict():
    cfg = Cfg(model=Model(width=3, levels=(2, 2)))
    data = to_dict(cfg)
    assert data == {"name": "x", "model": {"width": 3, "rate": 0.1, "levels": [2, 2]}}  # None dropped
    assert from_dict(Cfg, data) == cfg


def test_overrides_parse_toml_literals_and_nested_fields():
    cfg = apply_overrides(Cfg(), ["model.width=128", "model.rate=1", "model.levels=[8, 8]", "name=abc", "note=hi"])
    assert cfg.model == Model(width=128, rate=1.0, levels=(8, 8))
    assert isinstance(cfg.model.rate, float)
    assert cfg.name == "abc" and cfg.note == "hi"
    assert parse_value("0.6,0.2,0.2") == "0.6,0.2,0.2"
    assert parse_value("true") is True


@pytest.mark.parametrize(
    ("override", "match"),
    [("model.depth=3", "unknown config field 'model.depth'"), ("width", "key=value"), ("name.x=1", "not a section")],
)
def test_bad_overrides_name_the_field(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Cfg(), [override])


def test_unknown_keys_rejected_when_loading():
    with pytest.raises(ConfigError, match="no field"):
        from_dict(Cfg, {"name": "x", "bogus": 1})


def test_presets_compose_in_order():
    presets = {"small": {"model.width": 32}, "debug": {"model.width": 8, "name": "dbg"}}
    assert merge_presets(Cfg(), presets, ["small"]).model.width == 32
    cfg = merge_presets(Cfg(), presets, ["small", "debug"])
    assert (cfg.model.width, cfg.name) == (8, "dbg")
    with pytest.raises(ConfigError, match="unknown preset"):
        merge_presets(Cfg(), presets, ["huge"])


@dataclasses.dataclass(frozen=True)
class Sched:
    steps: int = 100
    warmup: int = 10

    def __post_init__(self):
        if self.warmup >= self.steps:
            raise ConfigError(f"warmup ({self.warmup}) must be below steps ({self.steps})")


@dataclasses.dataclass(frozen=True)
class Outer:
    train: Sched = Sched()


def test_overrides_apply_together_so_only_the_result_is_checked():
    cfg = apply_overrides(Outer(), ["train.steps=8", "train.warmup=2"])  # steps=8 alone would be invalid
    assert cfg.train == Sched(steps=8, warmup=2)
    assert merge_presets(Outer(), {"tiny": {"train.steps": 8, "train.warmup": 2}}, ["tiny"]).train.steps == 8
    with pytest.raises(ConfigError, match="warmup"):
        apply_overrides(Outer(), ["train.steps=8"])
