"""Time splits: where training ends and evaluation begins, fixed once in the dataset.

`--split` takes one of:

| form | meaning |
| ---- | ------- |
| `0.7,0.15,0.15` (default) | train / validation / test as shares of the common time span |
| `2024-09-01,2024-11-01` | validation starts at the first date, test at the second (UTC) |
| `walk-forward:K` or `walk-forward:K,F` | K expanding-window folds over the last share F (default 0.5) of the span |

Walk-forward: the last F of the span is cut into K equal test blocks of length b; fold k
tests on block k, validates on the block of length b just before it, and trains on
everything before that. Boundaries are snapped up to the next bar on the common grid and
stored as half-open intervals `[start, end)`; the last test period ends one bar after the
last bar. A stage fitted on a fold may only see data before that fold's `validation.start`
(model fitting) or `test.start` (model selection).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

from strates.core.errors import ConfigError

PERIODS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime  # exclusive

    def to_dict(self) -> dict[str, dt.datetime]:
        return {"start": self.start, "end": self.end}

    def bounds64(self) -> tuple:
        """(start, end) as naive-UTC numpy datetime64[us], to compare with bar times."""
        import numpy as np

        return tuple(np.datetime64(t.replace(tzinfo=None), "us") for t in (self.start, self.end))

    def overlaps(self, other: Period) -> bool:
        return self.start < other.end and other.start < self.end


@dataclasses.dataclass(frozen=True)
class Fold:
    name: str
    train: Period
    validation: Period
    test: Period

    def to_dict(self) -> dict:
        return {"name": self.name, **{p: getattr(self, p).to_dict() for p in PERIODS}}

    def period(self, name: str) -> Period:
        """`train`, `validation` or `test`."""
        return getattr(self, name)


def parse_split(spec: str) -> tuple[str, tuple]:
    """Check a `--split` value; returns (kind, parameters). Raises ConfigError with a fix."""
    text = spec.strip().lower()
    fix = "use e.g. --split 0.7,0.15,0.15, --split 2024-09-01,2024-11-01 or --split walk-forward:4"
    if text.startswith("walk-forward"):
        _, _, rest = text.partition(":")
        parts = [p for p in rest.split(",") if p]
        try:
            k = int(parts[0]) if parts else 4
            share = float(parts[1]) if len(parts) > 1 else 0.5
        except ValueError:
            raise ConfigError(f"cannot read walk-forward split {spec!r}", fix=fix, field="split") from None
        if not 1 <= k <= 100 or not 0.0 < share < 1.0 or len(parts) > 2:
            raise ConfigError(
                f"walk-forward split {spec!r} needs 1 <= K <= 100 folds and a share 0 < F < 1 (got K={k}, F={share})",
                fix=fix, field="split",
            )
        return "walk-forward", (k, share)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 3:
        try:
            shares = tuple(float(p) for p in parts)
        except ValueError:
            raise ConfigError(f"cannot read split shares {spec!r}", fix=fix, field="split") from None
        if any(s <= 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
            raise ConfigError(
                f"split shares {spec!r} must be positive and sum to 1 (they sum to {sum(shares):g})",
                fix=fix, field="split",
            )
        return "shares", shares
    if len(parts) == 2:
        try:
            dates = tuple(_parse_date(p) for p in parts)
        except ValueError:
            raise ConfigError(f"cannot read split dates {spec!r}", fix=fix, field="split") from None
        if not dates[0] < dates[1]:
            raise ConfigError(
                f"split dates {spec!r}: validation start {dates[0]:%Y-%m-%d} must come before "
                f"test start {dates[1]:%Y-%m-%d}",
                fix=fix, field="split",
            )
        return "dates", dates
    raise ConfigError(f"cannot read split {spec!r}", fix=fix, field="split")


def _parse_date(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def make_folds(spec: str, *, first: dt.datetime, last: dt.datetime, interval: dt.timedelta) -> list[Fold]:
    """Folds for bars from `first` to `last` (inclusive) on a grid of `interval`."""
    kind, params = parse_split(spec)
    end = last + interval
    span = end - first

    def snap(t: dt.datetime) -> dt.datetime:
        steps = math.ceil((t - first) / interval - 1e-9)
        return min(max(first + steps * interval, first), end)

    if kind == "shares":
        train_share, val_share, _ = params
        v = snap(first + span * train_share)
        t = snap(first + span * (train_share + val_share))
        folds = [Fold("holdout", Period(first, v), Period(v, t), Period(t, end))]
    elif kind == "dates":
        v, t = (snap(d) for d in params)
        folds = [Fold("holdout", Period(first, v), Period(v, t), Period(t, end))]
    else:
        k, share = params
        block = span * share / k
        t0 = end - span * share
        folds = []
        for i in range(k):
            t_start = snap(t0 + block * i)
            t_end = end if i == k - 1 else snap(t0 + block * (i + 1))
            v_start = snap(t_start - block)
            folds.append(Fold(f"fold{i}", Period(first, v_start), Period(v_start, t_start), Period(t_start, t_end)))
    for fold in folds:
        for name in PERIODS:
            period = getattr(fold, name)
            if not period.start < period.end:
                raise ConfigError(
                    f"split {spec!r} leaves the {name} period of {fold.name} empty "
                    f"({period.start.isoformat()} to {period.end.isoformat()}; data spans "
                    f"{first.isoformat()} to {last.isoformat()})",
                    fix="choose boundaries inside the data's time range, or fewer walk-forward folds",
                    field="split",
                )
    return folds
