from __future__ import annotations

import datetime as dt
import itertools

import pytest

from strates.core.errors import ConfigError
from strates.data.split import make_folds, parse_split

H = dt.timedelta(hours=1)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
LAST = T0 + 999 * H  # 1000 hourly bars


def test_default_shares_split_by_time_on_the_bar_grid():
    (fold,) = make_folds("0.7,0.15,0.15", first=T0, last=LAST, interval=H)
    assert fold.train.start == T0
    assert fold.validation.start == T0 + 700 * H
    assert fold.test.start == T0 + 850 * H
    assert fold.test.end == LAST + H
    assert fold.train.end == fold.validation.start and fold.validation.end == fold.test.start


def test_boundaries_snap_up_to_the_next_bar():
    (fold,) = make_folds("0.7005,0.15,0.1495", first=T0, last=LAST, interval=H)
    assert fold.validation.start == T0 + 701 * H  # 700.5 bars -> the next bar


def test_dates_split():
    (fold,) = make_folds("2024-01-20,2024-02-01T12:30", first=T0, last=LAST, interval=H)
    assert fold.validation.start == dt.datetime(2024, 1, 20, tzinfo=dt.UTC)
    assert fold.test.start == dt.datetime(2024, 2, 1, 13, tzinfo=dt.UTC)


def test_walk_forward_folds_expand_and_never_overlap_their_test():
    folds = make_folds("walk-forward:4", first=T0, last=LAST, interval=H)
    assert [f.name for f in folds] == ["fold0", "fold1", "fold2", "fold3"]
    assert folds[0].test.start == T0 + 500 * H
    assert folds[-1].test.end == LAST + H
    for prev, cur in itertools.pairwise(folds):
        assert cur.test.start == prev.test.end  # test blocks tile the last half
        assert cur.train.end > prev.train.end  # expanding window
    for f in folds:
        assert f.train.start == T0
        assert f.train.end == f.validation.start <= f.validation.end == f.test.start
        assert f.validation.end - f.validation.start == 125 * H


@pytest.mark.parametrize(
    "spec",
    ["0.7,0.2,0.2", "0.5,0.5", "2024-02-01,2024-01-20", "walk-forward:0", "walk-forward:3,1.5", "banana", "0,0.5,0.5"],
)
def test_bad_specs_are_config_errors_with_a_fix(spec):
    with pytest.raises(ConfigError) as info:
        parse_split(spec)
    assert info.value.fix and "--split" in info.value.fix


def test_dates_outside_the_data_leave_an_empty_period():
    with pytest.raises(ConfigError, match="test period of holdout empty"):
        make_folds("2024-01-10,2030-01-01", first=T0, last=LAST, interval=H)
