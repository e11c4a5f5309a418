"""The report's figures: each a function of plain data (Polars frames, dicts of numbers)
that returns PNG bytes. Drawn with matplotlib's object API (`Figure` + the Agg canvas), so
no global pyplot state and no display is involved; matplotlib is imported inside the
functions, so importing this module stays cheap.

Times on the x axes are UTC. Cumulative log returns are shown in percent (x100).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np

WIDTH = 10.0  # inches: about 1100 px at the default dpi
MAX_LEGEND = 12  # assets named in a legend; with more, the lines go unnamed
COLORS = {
    "agent": "#1f5fbf", "buy_and_hold": "#6b6b6b", "momentum": "#e08a1e", "random": "#a8a8a8",
    "deterministic": "#1f5fbf", "filtered": "#2a9d55", "sized": "#c0392b",
    "cfm": "#1f5fbf", "cfm_recalibrated": "#17becf", "cfm_shuffled": "#8c564b", "random_walk": "#6b6b6b",
    "bootstrap": "#e08a1e", "garch_t": "#7b3fa0",
    "train": "#2a9d55", "validation": "#e08a1e", "test": "#c0392b",
}
# names whose words alone would read badly; the rest are shown with "_" as " "
LABELS = {"garch_t": "GARCH(1,1)-t", "cfm_recalibrated": "cfm, spread recalibrated",
          "cfm_shuffled": "cfm, shuffled condition"}
# the multiverse policies often coincide: dashes keep every line visible on top of the others
LINESTYLES = {"filtered": (0, (5, 3)), "sized": (0, (1, 2))}
SPAN_COLORS = {"train": "#d8efdf", "validation": "#fbe8cf", "test": "#f6d5d1"}
STYLE = {
    "font.size": 9.5, "axes.titlesize": 10, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.edgecolor": "#888888",
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
}


@contextlib.contextmanager
def _figure(height: float, *, dpi: int, width: float = WIDTH) -> Iterator[Any]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(cast(Any, STYLE)):  # its keys are typed as a Literal of every rc name
        yield Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def _png(fig: Any, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _color(name: str, i: int) -> str:
    return COLORS.get(name, f"C{i % 10}")


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def naive_utc(values: Any) -> np.ndarray:
    """Datetimes (a Polars series, tz-aware or naive-UTC; or Python datetimes) as naive
    `datetime64[us]` in UTC."""
    import polars as pl

    if isinstance(values, pl.Series):
        if getattr(values.dtype, "time_zone", None):
            values = values.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return values.cast(pl.Datetime("us")).to_numpy()
    out = []
    for v in values:
        if isinstance(v, dt.datetime) and v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        out.append(np.datetime64(v, "us"))
    return np.array(out, dtype="datetime64[us]")


def thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` evenly spaced rows of `n` (first and last kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def _legend(fig: Any, ax: Any) -> None:
    """One legend for the whole figure, above the panels (from the lines of `ax`)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), frameon=False)


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# -- data --------------------------------------------------------------------------------------
def prices(bars: Any, spans: Sequence[tuple[str, dt.datetime, dt.datetime]], *, dpi: int = 110,
           max_points: int = 1500, channel: str | None = None) -> bytes:
    """Cumulative log return of the close per asset (`bars`: asset, ts, close), with the
    split's periods (`spans`: (name, start, end)) shaded; for a generic series, the values of
    its first `channel` per system instead (`bars`: asset, ts, channel)."""
    with _figure(3.8, dpi=dpi) as fig:
        ax = fig.add_subplot()
        for name, start, end in spans:
            a, b = naive_utc([start, end])
            ax.axvspan(a, b, color=SPAN_COLORS.get(name, "#eeeeee"), alpha=0.8, lw=0, label=name, zorder=0)
        n_assets = bars["asset"].n_unique()
        for i, (asset, frame) in enumerate(bars.sort("asset", "ts").group_by("asset", maintain_order=True)):
            close = frame[channel or "close"].to_numpy().astype(float)
            idx = thin(len(close), max_points)
            ts = naive_utc(frame["ts"])[idx]
            ax.plot(ts, close[idx] if channel else 100 * np.log(close[idx] / close[0]), lw=1.0, color=f"C{i % 10}",
                    zorder=2, label=str(asset[0]) if n_assets <= MAX_LEGEND else None)
        if channel is None:
            ax.axhline(0, color="#555555", lw=0.6, zorder=1)
        ax.set_ylabel(channel or "cumulative log return (%)")
        _date_axis(ax)
        handles = ax.get_legend_handles_labels()[0]
        fig.legend(loc="outside upper center", ncols=min(len(handles), 10), frameon=False)
        return _png(fig, dpi)


# -- tokenizer ---------------------------------------------------------------------------------
def tokenizer(r2: Mapping[str, Mapping[str, float]], history: Sequence[Mapping[str, float]], *,
              dpi: int = 110) -> bytes:
    """Left: reconstruction R² per feature for each period in `r2` ({period: {feature: R²}}).
    Right: the training loss and reconstruction MSE against the step (`history`)."""
    with _figure(3.2, dpi=dpi) as fig:
        left, right = fig.subplots(1, 2, width_ratios=[1.3, 1])
        features = list(dict.fromkeys(f for row in r2.values() for f in row))
        width = 0.8 / max(len(r2), 1)
        x = np.arange(len(features))
        for i, (period, row) in enumerate(r2.items()):
            vals = [row.get(f, np.nan) for f in features]
            left.bar(x + (i - (len(r2) - 1) / 2) * width, vals, width, label=period, color=_color(period, i))
        left.set_xticks(x, [_label(f) for f in features], rotation=20, ha="right")
        lows = [v for row in r2.values() for v in row.values() if np.isfinite(v)]
        left.set_ylim(max(0.0, min(lows, default=0.0) - 0.05), 1.0)
        left.set_ylabel("reconstruction R²")
        left.set_title("R² per feature", loc="left")
        left.legend(frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(r2), borderaxespad=0.2)
        left.grid(axis="x", visible=False)
        _history(right, history, ("loss", "mse"))
        right.set_title("training")
        return _png(fig, dpi)


def _history(ax: Any, history: Sequence[Mapping[str, float]], keys: Sequence[str]) -> None:
    steps = np.array([h.get("step", i) for i, h in enumerate(history)], dtype=float)
    for i, key in enumerate(keys):
        vals = np.array([h.get(key, np.nan) for h in history], dtype=float)
        if np.isfinite(vals).any():
            ax.plot(steps, vals, lw=1.3, color=f"C{i}", label=key)
    ax.set_xlabel("step")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False)


# -- jepa --------------------------------------------------------------------------------------
def jepa_loss(history: Sequence[Mapping[str, float]], validation: Mapping[int, float], *, selected: int | None = None,
              dpi: int = 110) -> bytes:
    """Left: training loss and its prediction term against the step, validation loss at each
    kept checkpoint, the selected step marked. Right: the VICReg variance and covariance terms."""
    with _figure(3.2, dpi=dpi) as fig:
        left, right = fig.subplots(1, 2, width_ratios=[1.4, 1])
        _history(left, history, ("loss", "pred"))
        if validation:
            steps = sorted(validation)
            left.plot(steps, [validation[s] for s in steps], "o--", color="#c0392b", ms=5, lw=1.0,
                      label="validation loss")
        if selected is not None:
            left.axvline(selected, color="#555555", ls=":", lw=1.0, label=f"selected step {selected}")
        left.legend(frameon=False)
        left.set_title("JEPA loss")
        _history(right, history, ("variance", "covariance"))
        right.set_title("VICReg terms (training)")
        return _png(fig, dpi)


# -- cfm ---------------------------------------------------------------------------------------
def skill(periods: Mapping[str, Mapping[str, Mapping[str, tuple[float, float, float]]]], *,
          dpi: int = 110) -> bytes:
    """The flow's CRPS skill 1 − CRPS_cfm / CRPS_other of the cumulative return, one panel
    per period ({period: {horizon: {other: (skill, lo, hi)}}}, `other` a forecast name such
    as `random_walk` or `cfm_shuffled`): per horizon a point per forecast compared against,
    with its interval [lo, hi] as an error bar, and a line at 0 (above: the flow is better).
    A period with no horizon gets an empty panel saying so."""
    if not periods:
        raise ValueError("the skill figure needs at least one period ({period: {horizon: {other: (skill, lo, hi)}}})")
    with _figure(3.0, dpi=dpi) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(periods), sharey=True, squeeze=False)).ravel()
        for ax, (period, rows) in zip(axes, periods.items(), strict=True):
            horizons = list(rows)
            others = list(dict.fromkeys(o for row in rows.values() for o in row))
            x = np.arange(len(horizons))
            width = 0.7 / max(len(others), 1)
            for i, other in enumerate(others):
                cells = np.array([rows[h].get(other, (np.nan, np.nan, np.nan)) for h in horizons], dtype=float)
                value, lo, hi = cells.T
                # an interval that misses its point (it cannot, from a percentile bootstrap) draws no negative bar
                err = np.vstack([np.maximum(value - lo, 0.0), np.maximum(hi - value, 0.0)])
                ax.errorbar(x + (i - (len(others) - 1) / 2) * width, value, yerr=err, fmt="o", ms=4.5, capsize=3,
                            lw=1.1, color=_color(other, i), label=_label(other))
            ax.axhline(0.0, color="#333333", lw=0.8)
            ax.set_xticks(x, [str(h) for h in horizons])
            ax.set_xlim(-0.5, max(len(horizons), 1) - 0.5)
            ax.set_xlabel("horizon")
            ax.set_title(period)
            ax.grid(axis="x", visible=False)
            if not horizons:
                ax.text(0.5, 0.5, "no skill recorded", transform=ax.transAxes, ha="center", va="center",
                        color="#555555")
        axes[0].set_ylabel("CRPS skill of the cfm (> 0: better)")
        handles = max((ax.get_legend_handles_labels() for ax in axes), key=lambda hl: len(hl[0]))
        if handles[0]:
            fig.legend(*handles, loc="outside upper center", ncols=len(handles[0]), frameon=False,
                       title="against", title_fontsize=8.5)
        return _png(fig, dpi)


def pit(periods: Mapping[str, Mapping[str, Sequence[float]]], *, horizon: int, dpi: int = 110) -> bytes:
    """PIT histograms at one `horizon`: a row per period and a panel per forecast
    ({period: {forecast: densities}}, the densities of equal-width bins on [0, 1], as
    `strates.cfm.calibration.pit_histogram` stores them), drawn as bars with the uniform
    density 1 marked. A hump in the middle: the futures are too wide; a U: too narrow; a
    slope: biased. The panels share the y axis so their shapes compare."""
    forecasts = list(dict.fromkeys(f for row in periods.values() for f in row))
    if not forecasts:
        raise ValueError("the PIT figure needs at least one period with a forecast ({period: {forecast: densities}})")
    with _figure(1.0 + 2.0 * len(periods), dpi=dpi) as fig:
        axes = np.array(fig.subplots(len(periods), len(forecasts), sharex=True, sharey=True, squeeze=False))
        for r, (period, row) in enumerate(periods.items()):
            for c, name in enumerate(forecasts):
                ax = axes[r, c]
                density = np.asarray(row.get(name, ()), dtype=float)
                if density.size:
                    edges = np.linspace(0.0, 1.0, density.size + 1)
                    ax.bar(edges[:-1], density, width=np.diff(edges), align="edge", color=_color(name, c),
                           alpha=0.75, edgecolor="white", lw=0.6)
                else:
                    ax.text(0.5, 0.5, "not scored", transform=ax.transAxes, ha="center", va="center",
                            color="#555555")
                ax.axhline(1.0, color="#333333", lw=0.9, ls="--")
                ax.set_xlim(0.0, 1.0)
                ax.set_title(f"{period} · {_label(name)}", fontsize=9)
                ax.grid(axis="x", visible=False)
                if c == 0:
                    ax.set_ylabel("density")
                if r == len(periods) - 1:
                    ax.set_xlabel(f"PIT of the cumulative return at h={horizon}")
        axes[0, 0].set_ylim(0.0, None)
        return _png(fig, dpi)


def fans(frame: Any, *, assets: int = 4, times: int = 3, dpi: int = 110) -> bytes:
    """Fan charts of the cumulative log return (`frame`: ts, asset, step, q05..q95,
    realized): the 5-95% and 25-75% bands and the median of the futures against the
    realized path, for up to `assets` assets at `times` evenly spaced decision times."""
    import polars as pl

    names = sorted(frame["asset"].unique().to_list())[:assets]
    picks = {}
    for a in names:
        ts = np.sort(frame.filter(pl.col("asset") == a)["ts"].unique().to_numpy())
        picks[a] = ts[np.unique(np.linspace(0, len(ts) - 1, min(times, len(ts))).round().astype(int))]
    cols = max((len(v) for v in picks.values()), default=1)
    with _figure(1.9 * len(names) + 0.5, dpi=dpi) as fig:
        axes = np.array(fig.subplots(len(names), cols, sharex=True, sharey="row", squeeze=False))
        for r, a in enumerate(names):
            for c in range(cols):
                ax = axes[r, c]
                if c >= len(picks[a]):
                    ax.set_visible(False)
                    continue
                t = picks[a][c]
                rows = frame.filter((pl.col("asset") == a) & (pl.col("ts") == t)).sort("step")
                x = np.concatenate([[0], rows["step"].to_numpy()])
                q = {k: 100 * np.concatenate([[0.0], rows[k].to_numpy()])
                     for k in ("q05", "q25", "q50", "q75", "q95", "realized")}
                ax.fill_between(x, q["q05"], q["q95"], color="#1f5fbf", alpha=0.15, lw=0, label="5-95%")
                ax.fill_between(x, q["q25"], q["q75"], color="#1f5fbf", alpha=0.3, lw=0, label="25-75%")
                ax.plot(x, q["q50"], color="#1f5fbf", lw=1.4, label="median")
                ax.plot(x, q["realized"], color="black", lw=1.2, marker="o", ms=2.5, label="realized")
                ax.axhline(0, color="#555555", lw=0.5)
                stamp = np.datetime_as_string(np.datetime64(t, "m")).replace("T", " ")
                ax.set_title(f"{a} · {stamp}", fontsize=9)
                if c == 0:
                    ax.set_ylabel("cum. log ret. (%)")
                if r == len(names) - 1:
                    ax.set_xlabel("steps ahead")
        _legend(fig, axes[0, 0])
        return _png(fig, dpi)


# -- agent and multiverse ----------------------------------------------------------------------
def equity(frame: Any, *, strategies: Sequence[str] = (), highlight: str = "", dpi: int = 110,
           max_points: int = 1500) -> bytes:
    """Equity curves (`frame`: ts, strategy, cost_bps, equity = wealth from 1, the product of
    1 + the portfolio's simple returns), shown as the return on the starting wealth in
    percent, one panel per cost level, one line per strategy (in the order of
    `strategies`, then the rest)."""
    import polars as pl

    costs = sorted(frame["cost_bps"].unique().to_list())
    present = frame["strategy"].unique().to_list()
    order = [s for s in strategies if s in present] + sorted(s for s in present if s not in strategies)
    cols = 2 if len(costs) > 1 else 1
    rows = -(-len(costs) // cols)
    with _figure(2.6 * rows + 0.4, dpi=dpi) as fig:
        axes = np.array(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
        for ax, cost in zip(axes, costs, strict=False):
            for i, name in enumerate(order):
                curve = frame.filter((pl.col("strategy") == name) & (pl.col("cost_bps") == cost)).sort("ts")
                if not curve.height:
                    continue
                idx = thin(curve.height, max_points)
                ax.plot(naive_utc(curve["ts"])[idx], 100 * (curve["equity"].to_numpy()[idx] - 1.0),
                        color=_color(name, i), lw=2.0 if name == highlight else 1.2, ls=LINESTYLES.get(name, "-"),
                        label=_label(name), zorder=3 + i)
            ax.axhline(0, color="#555555", lw=0.6)
            ax.set_title(f"cost {cost:g} bps per side")
            _date_axis(ax)
        for ax in axes[len(costs):]:
            ax.set_visible(False)
        for ax in axes[::cols]:
            ax.set_ylabel("wealth − 1 (%)")
        _legend(fig, axes[0])
        return _png(fig, dpi)


HEATMAPS = (
    ("consensus", "consensus (share agreeing with the majority)", "YlGnBu"),
    ("bifurcation", "bifurcation index (share differing from the unperturbed decision)", "YlOrRd"),
    ("lyapunov_per_bar", "Lyapunov proxy λ per bar (red: perturbations grow, blue: they shrink)", "RdBu_r"),
)


def heatmaps(frame: Any, *, bins: int = 400, dpi: int = 110) -> bytes:
    """Asset x time heatmaps of consensus, bifurcation index and Lyapunov proxy per bar
    (`frame`: asset, ts and those of the columns it has: a panel per column present, so the
    futures alone, without decisions, show λ only); with more than `bins` decision times,
    each column is the mean over consecutive times."""
    import matplotlib.dates as mdates

    assets = sorted(frame["asset"].unique().to_list())
    ts = np.unique(naive_utc(frame["ts"]))
    col = np.searchsorted(ts, naive_utc(frame["ts"]))
    if len(ts) > bins:
        edges = np.linspace(0, len(ts), bins + 1).astype(int)
        col = np.searchsorted(edges, col, side="right") - 1
        starts = ts[edges[:-1]]
    else:
        starts = ts
    ncol = len(starts)
    row = np.searchsorted(np.array(assets), np.array(frame["asset"].to_list()))
    step = (ts[-1] - ts[0]) / max(len(ts) - 1, 1) if len(ts) > 1 else np.timedelta64(1, "h")
    x0, x1 = mdates.date2num(ts[0]), mdates.date2num(ts[-1] + step)
    panels = [p for p in HEATMAPS if p[0] in frame.columns] or list(HEATMAPS[:1])
    with _figure(1.0 + len(panels) * (0.45 + 0.22 * len(assets)), dpi=dpi) as fig:
        axes = fig.subplots(len(panels), 1, sharex=True)
        for ax, (key, title, cmap) in zip(np.atleast_1d(axes), panels, strict=True):
            total = np.zeros((len(assets), ncol))
            count = np.zeros((len(assets), ncol))
            vals = frame[key].to_numpy().astype(float) if key in frame.columns else np.full(frame.height, np.nan)
            ok = np.isfinite(vals)
            np.add.at(total, (row[ok], col[ok]), vals[ok])
            np.add.at(count, (row[ok], col[ok]), 1)
            grid = np.where(count > 0, total / np.maximum(count, 1), np.nan)
            if key == "lyapunov_per_bar":
                vmax = float(np.nanpercentile(np.abs(grid), 98)) if np.isfinite(grid).any() else 1.0
                vmin, vmax = -(vmax or 1.0), vmax or 1.0
            elif key == "consensus":
                vmin, vmax = min(1 / 3, float(np.nanmin(grid)) if np.isfinite(grid).any() else 1 / 3), 1.0
            else:  # a share in [0, 1]; small shares keep some contrast
                vmin, vmax = 0.0, max(float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.0, 0.25)
            image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax,
                              extent=(x0, x1, len(assets) - 0.5, -0.5))
            ax.set_yticks(np.arange(len(assets)), assets)
            ax.set_title(title, loc="left")
            ax.grid(False)
            fig.colorbar(image, ax=ax, pad=0.01, fraction=0.03, aspect=8)
            ax.xaxis_date()
            _date_axis(ax)
        return _png(fig, dpi)


DISTRIBUTIONS = (("consensus", "consensus"), ("bifurcation", "bifurcation index"),
                 ("lyapunov_per_bar", "Lyapunov proxy λ per bar"), ("sensitivity", "sensitivity"),
                 ("modes", "future modes"))


def distributions(frame: Any, *, threshold: float | None = None, dpi: int = 110) -> bytes:
    """Histograms of the per-decision metrics (`frame`: those of consensus, bifurcation,
    lyapunov_per_bar, sensitivity and modes it has: a panel per column present); the
    contested threshold marked on consensus, 0 on λ, one bar per count of modes."""
    panels = [p for p in DISTRIBUTIONS if p[0] in frame.columns] or list(DISTRIBUTIONS)
    with _figure(2.4, dpi=dpi) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (key, title) in zip(axes, panels, strict=True):
            vals = frame[key].to_numpy().astype(float) if key in frame.columns else np.array([])
            vals = vals[np.isfinite(vals)]
            values, counts = np.unique(vals, return_counts=True)
            if key in ("consensus", "bifurcation"):  # shares of whole universes in [0, 1]
                if len(values) <= 64:  # one bar per share
                    width = 0.8 * min(np.diff(values).min() if len(values) > 1 else 0.05, 0.05)
                    ax.bar(values, counts, width=width, color="#1f5fbf", alpha=0.8)
                else:
                    ax.hist(vals, bins=np.linspace(0, 1, 21), color="#1f5fbf", alpha=0.8)
                ax.set_xlim(-0.03, 1.03)
            elif key == "modes" and len(values):  # whole counts
                ax.bar(values, counts, width=0.6, color="#1f5fbf", alpha=0.8)
                ax.set_xticks(values if len(values) <= 8 else values[:: -(-len(values) // 8)])
            elif len(values):
                ax.hist(vals, bins=int(np.clip(len(vals) // 4, 5, 30)), color="#1f5fbf", alpha=0.8)
            if key == "consensus" and threshold is not None:
                ax.axvline(threshold, color="#c0392b", lw=1.2, ls="--", label=f"threshold {threshold:.2f}")
                ax.legend(frameon=False, fontsize=7.5)
            if key == "lyapunov_per_bar" and len(vals) and vals.min() <= 0 <= vals.max():
                ax.axvline(0, color="#333333", lw=0.8)
            ax.set_title(title)
            ax.grid(axis="x", visible=False)
        axes[0].set_ylabel("decisions")
        return _png(fig, dpi)
