"""Report config: how much of each artifact goes into the figures, and how they are drawn."""

from __future__ import annotations

import dataclasses

from strates.core.errors import ConfigError

DEFAULT_PRESET = "small"


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field)


@dataclasses.dataclass(frozen=True)
class Config:
    """`dpi`: resolution of every PNG; `max_points`: points per line in time-series figures
    (longer series are thinned evenly); `fan_assets` x `fan_times`: the grid of fan charts
    (assets, decision times per asset); `heatmap_times`: columns of the asset x time heatmaps
    (longer periods are averaged into that many bins). `worldmodels`, `dream`: the ids of the
    World Models artifact and its dream the report shows ("": the most recent ones built on
    the report's dataset, filled in before the report's id is computed and left "" when
    there are none, so a report without them keeps its id; "none": show none)."""

    dpi: int = 110
    max_points: int = 1500
    fan_assets: int = 4
    fan_times: int = 3
    heatmap_times: int = 400
    worldmodels: str = ""
    dream: str = ""

    def __post_init__(self):
        _check(40 <= self.dpi <= 300, "dpi", f"dpi must be between 40 and 300, got {self.dpi}")
        _check(self.max_points >= 50, "max_points", f"max_points must be >= 50, got {self.max_points}")
        _check(1 <= self.fan_assets <= 8, "fan_assets", f"fan_assets must be between 1 and 8, got {self.fan_assets}")
        _check(1 <= self.fan_times <= 6, "fan_times", f"fan_times must be between 1 and 6, got {self.fan_times}")
        _check(self.heatmap_times >= 10, "heatmap_times", f"heatmap_times must be >= 10, got {self.heatmap_times}")


PRESETS: dict[str, dict] = {
    "debug": {"dpi": 90, "max_points": 300, "fan_assets": 2, "fan_times": 2, "heatmap_times": 60},
    "small": {},
    "base": {"dpi": 130, "max_points": 3000, "heatmap_times": 800},
}
