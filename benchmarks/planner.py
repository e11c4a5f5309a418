"""Strate IV decision speed: the latency of one MPPI decision for a single asset, and
decisions/s batched over 256 assets, with the default planner sizes (512 samples, 64 elites,
6 iterations, horizon 3, 16 futures, a 9-point value grid, 24 policy-prior trajectories)
and a freshly initialised `small` agent; plus, separately, the terminal-value grid.

    python benchmarks/planner.py [--batch 256] [--repeats 20]

Prints one JSON object on stdout. Speed does not depend on training.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and benchmarks/tokenize.py would shadow the
# standard library's `tokenize`: put the repository root there instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from strates.agent import model, planner  # noqa: E402
from strates.agent.config import Config  # noqa: E402
from strates.core.perf import best_time  # noqa: E402

STATE_DIM = 64
RET_SCALE = 0.01  # training-period std of log returns: puts the values in PnL units
TARGETS = {"single_ms": 20, "batched_per_s": 500}


def make_fns(config: Config):
    pc, group = config.planner, config.model.simnorm_dim
    cost, gamma = config.env.cost_bps * 1e-4, config.loss.gamma

    @jax.jit
    def decide(params, h, position, returns, values, warm, key):
        # what `Decider._decide_impl` does for the mppi planner
        prior = model.prior_trajectories(params, h, position, key=jax.random.fold_in(key, 1),
                                         n=pc.policy_trajectories, horizon=pc.horizon, group=group)
        return planner.plan(returns, position, key=key, cost=cost, alpha=pc.cvar_alpha, gamma=gamma, values=values,
                            prior=prior, warm=warm, samples=pc.samples, elites=pc.elites, iterations=pc.iterations,
                            temperature=pc.temperature, min_std=pc.min_std, max_std=pc.max_std)

    @jax.jit
    def values(params, end):
        # what `Decider._values_impl` does: V(h_end, p) on the position grid, [B, N, D] -> [B, N, G]
        grid = jnp.linspace(-1.0, 1.0, pc.value_grid)
        hh = jnp.broadcast_to(end[..., None, :], (*end.shape[:-1], pc.value_grid, end.shape[-1]))
        p = jnp.broadcast_to(grid, (*end.shape[:-1], pc.value_grid))
        return model.state_value(params, hh, p, group=group) * RET_SCALE

    return decide, values


def inputs(key, b: int, config: Config):
    pc = config.planner
    k = jax.random.split(key, 3)
    h = jax.random.normal(k[0], (b, STATE_DIM), jnp.float32)
    h = h / jnp.linalg.norm(h, axis=-1, keepdims=True)
    end = jax.random.normal(k[1], (b, pc.futures, STATE_DIM), jnp.float32)
    end = end / jnp.linalg.norm(end, axis=-1, keepdims=True)
    returns = RET_SCALE * jax.random.normal(k[2], (b, pc.futures, pc.horizon), jnp.float32)
    position = jnp.zeros((b,), jnp.float32)
    warm = jnp.broadcast_to(position[:, None], (b, pc.horizon))
    return h, end, returns, position, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    config = Config()  # the `small` preset is the defaults
    pc = config.planner
    params = model.init(jax.random.key(0), config.model, state_dim=STATE_DIM)
    decide, values_fn = make_fns(config)

    rows = {}
    for name, b, repeats in (("single", 1, args.repeats), ("batched", args.batch, max(3, args.repeats // 4))):
        h, end, returns, position, warm = inputs(jax.random.key(b), b, config)
        values = values_fn(params, end)
        key = jax.random.key(7)
        t_plan = best_time(decide, (params, h, position, returns, values, warm, key), repeats)
        t_values = best_time(values_fn, (params, end), repeats)
        rows[name] = {
            "assets": b,
            "plan_ms": round(t_plan * 1e3, 3),
            "plan_decisions_per_s": round(b / t_plan, 1),
            "values_ms": round(t_values * 1e3, 3),
            "plan_plus_values_ms": round((t_plan + t_values) * 1e3, 3),
            "plan_plus_values_decisions_per_s": round(b / (t_plan + t_values), 1),
            "repeats": repeats,
        }

    device = jax.devices()[0]
    result = {
        "benchmark": "planner",
        "preset": "small",
        "sizes": {"samples": pc.samples, "elites": pc.elites, "iterations": pc.iterations, "horizon": pc.horizon,
                  "futures": pc.futures, "value_grid": pc.value_grid, "policy_trajectories": pc.policy_trajectories,
                  "state_dim": STATE_DIM, "latent_dim": config.model.latent_dim, "width": config.model.width,
                  "q_ensemble": config.model.q_ensemble, "cvar_alpha": pc.cvar_alpha},
        "single": rows["single"],
        "batched": rows["batched"],
        "targets": TARGETS,
        "met": {"single_ms": rows["single"]["plan_ms"] <= TARGETS["single_ms"],
                "batched_per_s": rows["batched"]["plan_decisions_per_s"] >= TARGETS["batched_per_s"]},
        "notes": ("plan = one jitted call of model.prior_trajectories (24 policy-prior trajectories) + planner.plan "
                  "(MPPI, CVaR objective) on given futures returns [B, 16, 3] and terminal values [B, 16, 9]; "
                  "the futures come from Strate III and are drawn in batch beforehand (benchmarks/cfm.py times "
                  "them), so they are not in these times. values = model.state_value on the [B, 16, 9] grid of "
                  "(end state, position), timed separately; 'met' judges the plan times. Best wall time of "
                  "`repeats` runs after one warm-up (strates.core.perf.best_time)."),
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "jax": jax.__version__},
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
