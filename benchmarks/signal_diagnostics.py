"""Where `chaos bench signal` loses the planted edge: per kappa, what a linear read of the
flow's condition (h_t and the scale features) carries, and what it would earn.

    python benchmarks/signal_diagnostics.py --workspace DIR [--bench latest]

For each kappa of a bench-signal artifact, from the artifacts of its chain (nothing is
trained but ridge regressions):
- `condition_g_corr`: the correlation on the test period of g(s_t) with a ridge regression
  of g on the flow's condition (fitted on the training period), and `state_g_corr` /
  `scale_g_corr` the same from h_t alone and from the scale features alone (the
  information the flow is given: is the edge's state in it?);
- `mean_read`: a ridge regression of the next bar's return in units of sigma_t (the flow's
  own unit) on the condition, fitted on the training period: what a linear conditional mean
  learnt from realised returns, not from g, would earn on the test period holding
  clip(prediction / 0.05, -1, 1): its Sharpe at 0 and 5 bps and its turnover per bar and
  asset (the flow's futures would need to carry such a mean for the agent to see it).
Prints one JSON object with the machine's fp32 matmul peak.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[0] = ROOT  # benchmarks/tokenize.py would shadow the standard library's `tokenize`

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402

from strates.core.perf import matmul_peak  # noqa: E402

SCALE = 0.05  # a predicted mean of 0.05 sigma per bar holds a full position
SKIP = 300  # each asset's first bars: the slow state g is still starting up


def diagnose(ws, row: dict) -> dict:
    import polars as pl

    from strates.agent.backtest import clock, portfolio_returns
    from strates.cfm import artifact as cfm_artifact
    from strates.core import accounting, artifacts
    from strates.data import artifact as data_artifact
    from strates.data.ingest import load_signal
    from strates.jepa.artifact import embed
    from strates.jepa.probe import ridge_predict

    dataset = artifacts.resolve(ws, row["dataset"])
    agent = artifacts.resolve(ws, row["agent"])
    cfm = artifacts.resolve(ws, agent.parents["cfm"], stage="cfm")
    jepa = artifacts.resolve(ws, agent.parents["jepa"], stage="jepa")
    _, scales = cfm_artifact.load_flows(ws, cfm)
    emb = embed(ws, jepa)
    observed = scales.observe(emb.states)
    signal = load_signal(ws, dataset)
    k, d = scales.cond_dim, scales.state_dim
    parts: dict[str, list] = {"x": [], "g": [], "y": []}
    for s in observed:
        a, b = emb.fold.train.bounds64()
        t = np.arange(len(s.ts) - 1)
        t = t[(s.ts[t] >= a) & (s.ts[t + 1] < b) & (t >= SKIP)]
        parts["x"].append(s.h[t, :k])
        parts["y"].append(np.clip(s.r[t + 1] / np.exp(s.h[t, -1].astype(np.float64)), -12, 12))
        if signal is not None:
            g = signal.filter(pl.col("asset") == s.asset).sort("ts")["g"].to_numpy()
            parts["g"].append(g[t])
    x, y = np.concatenate(parts["x"]), np.concatenate(parts["y"])
    ts, obs, valid, r_next, _ = clock(observed, emb.fold.test)
    x_test = obs[valid][:, :k]
    out: dict = {"kappa": row["kappa"]}
    if signal is not None:
        g_train = np.concatenate(parts["g"])
        g_test = np.zeros(valid.shape)
        for j, s in enumerate(observed):
            mine = signal.filter(pl.col("asset") == s.asset).with_columns(pl.col("ts").dt.replace_time_zone(None))
            pos = np.searchsorted(mine["ts"].to_numpy(), ts)
            ok = pos < len(mine)
            g_test[ok, j] = mine["g"].to_numpy()[pos[ok]]
        for name, cols in (("condition", slice(0, k)), ("state", slice(0, d)), ("scale", slice(d, k))):
            pred = ridge_predict(x[:, cols], g_train, x_test[:, cols])
            out[f"{name}_g_corr"] = round(float(np.corrcoef(pred, g_test[valid])[0, 1]), 4)
    mean = np.zeros(valid.shape)
    mean[valid] = ridge_predict(x, y, x_test)
    held = np.where(valid, np.clip(mean / SCALE, -1.0, 1.0), 0.0)
    ppy = data_artifact.read(dataset).summary.periods_per_year
    out["mean_read"] = {
        "sharpe_0bps": round(accounting.sharpe(portfolio_returns(held, r_next, valid, cost_bps=0.0),
                                               periods_per_year=ppy), 3),
        "sharpe_5bps": round(accounting.sharpe(portfolio_returns(held, r_next, valid, cost_bps=5.0),
                                               periods_per_year=ppy), 3),
        "turnover": round(float(np.abs(np.diff(held, axis=0)).mean()), 4),
        "prediction_std_sigma": round(float(mean[valid].std()), 4),
    }
    return out


def main() -> None:
    from strates.bench import signal as bench
    from strates.core import artifacts
    from strates.core.workspace import Workspace

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--bench", default="latest", help="a bench-signal artifact (latest, id or prefix)")
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    b = bench.read(artifacts.resolve(ws, args.bench, stage="bench-signal"))
    peak = matmul_peak(3)
    rows = [diagnose(ws, {"kappa": k.kappa, "dataset": k.dataset, "agent": k.agent}) for k in b.metrics.kappas]
    print(json.dumps({"bench": b.ref, "kappas": rows, "matmul_peak_gflops": peak["gflops"]}, indent=2))


if __name__ == "__main__":
    main()
