"""Why the multiverse proxy reads what it reads on `chaos bench lyapunov`: per system, what the
representation and the flow carry.

    python benchmarks/lyapunov_diagnostics.py --workspace DIR [--bench latest] [--decisions 32]

For each system of a bench artifact, from the artifacts of its chain (nothing is trained):
- `state_step`: mean geodesic distance (rad) between consecutive JEPA states h_t, h_{t+1}
  on the test period (unit vectors drawn at random in D dims are ~pi/2 apart);
- `state_r2`: R² on the test period of a ridge regression of the system's channels on
  h_t fitted on the training period (how much of the system's state h_t carries linearly);
- `future_spread`: mean geodesic distance between two of universe 0's futures at each step
  (the flow's uncertainty about the future states; ~pi/2 is no information);
- `log_divergence`: mean log d(k), k = 0..H, of the pathwise divergence behind λ (d(0) = σ);
  `lambda_per_bar` its slope, and `lambda_after_first` the slope over k = 1..H only.
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


def diagnose(ws, futures_ref: str, *, decisions: int, sigma: float, universes: int) -> dict:
    import jax
    import jax.numpy as jnp

    from strates.cfm import artifact as cfm_artifact
    from strates.cfm.data import period_index
    from strates.cfm.model import source
    from strates.cfm.sample import sample_from
    from strates.core import artifacts
    from strates.data.ingest import load_bars
    from strates.jepa.artifact import embed
    from strates.multiverse import crossing
    from strates.multiverse.futures import evenly

    fo = artifacts.resolve(ws, futures_ref.split("/")[-1], stage="multiverse-futures")
    cfm = cfm_artifact.read(artifacts.resolve(ws, fo.parents["cfm"], stage="cfm"))
    states, fold, dataset = embed(ws, artifacts.resolve(ws, fo.parents["jepa"], stage="jepa"))
    flows, scales = cfm_artifact.load_flows(ws, cfm)
    s = states[0]
    h = s.h.astype(np.float64)
    test = period_index(states, fold.test.start, fold.test.end, 1, history=scales.scale.unit_window)[0]
    train = period_index(states, fold.train.start, fold.train.end, 1, history=scales.scale.unit_window)[0]
    step = float(np.mean(crossing.geodesic(h[test + 1], h[test])))
    bars = load_bars(ws, dataset.manifest).sort("ts")
    channels = bars.select(dataset.summary.channels).to_numpy()
    x_train, x_test = np.c_[h[train], np.ones(len(train))], np.c_[h[test], np.ones(len(test))]
    coef = np.linalg.solve(x_train.T @ x_train + 1e-3 * np.eye(x_train.shape[1]), x_train.T @ channels[train])
    resid = channels[test] - x_test @ coef
    r2 = float(np.mean(1 - resid.var(0) / channels[test].var(0)))
    picked = evenly(test, decisions)
    obs = jnp.asarray(scales.observe(states)[0].h[picked], jnp.float32)
    d, hz, f = scales.state_dim, scales.horizon, flows[0]
    keys = jax.random.split(jax.random.key(0), len(picked))
    uu = jax.vmap(lambda o, k: crossing.perturb(o, key=k, m=universes, sigma=sigma))(obs[:, :d], keys)
    cond = jnp.concatenate([uu, jnp.broadcast_to(obs[:, None, d:-1], (*uu.shape[:2], obs.shape[-1] - 1 - d))], -1)
    n = cfm.config.sample.futures
    noise = jax.vmap(lambda k: source(k, (n, f.x_dim), f))(jax.random.split(jax.random.key(1), len(picked)))
    x = sample_from(f, jnp.repeat(noise, universes + 1, axis=0), cond.reshape(-1, cond.shape[-1]),
                    nfe=cfm.config.sample.nfe, method=cfm.config.sample.method)
    x = x.reshape(len(picked), universes + 1, n, -1)
    futures = crossing.unit(x[..., : hz * d].reshape(*x.shape[:-1], hz, d))
    curve = np.asarray(crossing.log_divergence(futures, d0=sigma)).mean(0)
    spread = np.asarray(crossing.geodesic(futures[:, 0, :, None], futures[:, 0, None, :])).mean((0, 1, 2))
    return {"state_step": round(step, 3), "state_r2": round(r2, 3),
            "future_spread": [round(float(v), 3) for v in spread],
            "log_divergence": [round(float(v), 3) for v in curve],
            "lambda_per_bar": round(float(crossing.lyapunov_slope(curve)), 4),
            "lambda_after_first": round(float(crossing.lyapunov_slope(curve[1:])), 4)}


def main() -> None:
    from strates.bench.artifact import Bench
    from strates.core.workspace import Workspace

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--bench", default="latest")
    parser.add_argument("--decisions", type=int, default=32)
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    b = Bench.load(ws, args.bench)
    peak = matmul_peak(3)
    rows = {}
    for r in b.metrics.systems:
        fo = r.multiverse
        rows[r.name] = {"kind": r.kind, "lambda_true": r.lambda_true, "lambda_multiverse": r.lambda_multiverse,
                        **diagnose(ws, fo, decisions=args.decisions, sigma=0.02, universes=8)}
    print(json.dumps({"bench": b.ref, "systems": rows, "matmul_peak_gflops": peak["gflops"]}, indent=2))


if __name__ == "__main__":
    main()
