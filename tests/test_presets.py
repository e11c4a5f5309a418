"""Every preset of every stage builds a valid config, survives the TOML round trip that
saves it in the manifest, and a bad choice exits 2 listing the valid values."""

from __future__ import annotations

import enum

import pytest

from strates.core.config import from_dict, to_dict
from strates.core.errors import ConfigError
from strates.pipeline import STAGES, stages


def _cases():
    for stage in stages()[1:]:
        names = list(stage.presets) or [None]
        for name in names:
            yield pytest.param(stage, name, id=f"{stage.kind}-{name}")


@pytest.mark.parametrize(("stage", "preset"), list(_cases()))
def test_every_preset_builds_and_round_trips(stage, preset):
    config = stage.configure([preset] if preset else None)
    assert from_dict(stage.config, to_dict(config)) == config
    if preset and stage.presets[preset]:
        assert config != stage.config(), f"{stage.kind} preset {preset} changes nothing"
    if preset and preset != "debug" and "debug" in stage.presets:  # presets compose: a size, then debug
        composed = stage.configure([preset, "debug"])
        assert from_dict(stage.config, to_dict(composed)) == composed


def test_the_pipeline_lists_every_stage_once_in_order():
    kinds = [s.kind for s in stages()]
    assert kinds == list(STAGES) and len(set(kinds)) == len(kinds)
    for before, stage in zip(stages(), stages()[1:], strict=False):
        assert stage.parents[0] == before.kind, f"{stage.kind} must take {before.kind} as its first parent"


def _enum_fields(config, prefix=""):
    import dataclasses

    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from _enum_fields(value, f"{prefix}{f.name}.")
        elif isinstance(value, enum.Enum):
            yield f"{prefix}{f.name}", type(value)


@pytest.mark.parametrize("stage", stages()[1:], ids=lambda s: s.kind)
def test_every_choice_is_an_enum_and_a_typo_lists_the_valid_values(stage):
    for field, kind in _enum_fields(stage.configure()):
        with pytest.raises(ConfigError) as err:
            stage.configure(overrides=[f"{field}=not-a-choice"])
        assert err.value.exit_code == 2
        assert all(str(m.value) in str(err.value) for m in kind), str(err.value)
