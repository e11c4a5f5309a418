"""Multiverse Crossing speed: wall time of one decision time over 372 assets with M = 30
universes (+ the unperturbed one), M noise-floor copies and N = 16 futures each, with the
`small` presets of the
flow (Strate III), the agent (Strate IV, MPPI at TD-MPC2's size) and the JEPA state size.

    python benchmarks/multiverse.py [--assets 372] [--universes 30] [--futures 16] [--repeats 3]

Prints one JSON object on stdout. Networks are freshly initialised: speed does not depend
on training. Timed: `strates.multiverse.stage.cross` (perturb, draw the futures, terminal
values, MPPI per universe and per noise-floor copy, metrics), the same function `chaos
multiverse` runs, around a one-bar walk of the agent (not timed); the first
call (compiling) and the best of `repeats` later calls are both reported.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and benchmarks/tokenize.py would shadow the
# standard library's `tokenize`: put the repository root there instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from strates.agent import Config as AgentConfig  # noqa: E402
from strates.agent import model  # noqa: E402
from strates.agent.policy import Decider  # noqa: E402
from strates.cfm import Config as CfmConfig  # noqa: E402
from strates.cfm.model import build_model  # noqa: E402
from strates.jepa import Config as JepaConfig  # noqa: E402
from strates.multiverse import Config  # noqa: E402
from strates.multiverse.stage import cross  # noqa: E402

TARGET_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=372)
    parser.add_argument("--universes", type=int, default=30)
    parser.add_argument("--futures", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    d = JepaConfig().model.d_model  # the state dimension of the small JEPA
    cfm = CfmConfig()
    agent = AgentConfig()
    agent = dataclasses.replace(agent, planner=dataclasses.replace(agent.planner, futures=args.futures))
    horizon = cfm.future.horizon
    k = len(cfm.scale.names)  # the scale features beside h_t in the flow's condition
    flow = build_model(cfm, x_dim=horizon * (d + 1), cond_dim=d + k, seed=0)
    params = model.init(jax.random.key(1), agent.model, state_dim=d)
    decider = Decider(agent, params, [flow], ret_scale=0.01, cfm_horizon=horizon, state_dim=d)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((1, args.assets, d)).astype(np.float32)
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    # observations: h_t, standardised scale features, log unit (a 1% trailing volatility)
    h = np.concatenate([h, rng.standard_normal((1, args.assets, k)).astype(np.float32) / np.sqrt(k),
                        np.full((1, args.assets, 1), np.log(0.01), np.float32)], axis=-1)
    valid = np.ones((1, args.assets), bool)
    config = Config(universes=args.universes)

    def once(seed):
        key = jax.random.key(seed)
        returns, values = decider.inputs(h, key=key)
        walk = decider.walk(h, valid, returns, values, key=key)
        start = time.perf_counter()
        out = cross(decider, h, config, walk_key=key, deterministic=walk, bars=np.arange(1))
        return time.perf_counter() - start, out

    first, out = once(0)
    best = min(once(i + 1)[0] for i in range(args.repeats))
    u = args.universes + 1
    print(json.dumps({
        "benchmark": "multiverse", "preset": "small",
        "sizes": {"assets": args.assets, "universes": args.universes, "futures": decider.futures_per_state,
                  "state_dim": d, "cfm_horizon": horizon, "cfm_width": cfm.model.width, "nfe": agent.planner.nfe,
                  "mppi": {"samples": agent.planner.samples, "elites": agent.planner.elites,
                           "iterations": agent.planner.iterations, "horizon": agent.planner.horizon},
                  "value_grid": agent.planner.value_grid},
        "first_call_s": round(first, 3), "best_s": round(best, 3), "repeats": args.repeats,
        "decisions": args.assets * (u + args.universes),
        "decisions_per_s": round(args.assets * (u + args.universes) / best, 1),
        "futures_per_s": round(args.assets * (u + args.universes) * decider.futures_per_state / best, 1),
        "consensus_mean": float(out["consensus"].mean()),
        "target_s": TARGET_S, "met": best <= TARGET_S,
        "device": {"platform": jax.devices()[0].platform, "count": jax.device_count()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "jax": jax.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()
