"""Strate III speed: futures/s of the flow sampler for N=16 futures x 256 states at NFE 2 and
8 with the `small` preset, and model FLOP/s as a share of this machine's fp32 matmul peak
(measured in the same run).

    python benchmarks/cfm.py [--states 256] [--futures 16] [--repeats 10]

Prints one JSON object on stdout. The vector field is freshly initialised: speed does not
depend on training.
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
from flax import nnx  # noqa: E402

from strates.cfm import PRESETS, Config  # noqa: E402
from strates.cfm.model import build_model  # noqa: E402
from strates.cfm.sample import integrate  # noqa: E402
from strates.core.config import merge_presets  # noqa: E402
from strates.core.perf import best_time, flops_of, matmul_peak  # noqa: E402
from strates.jepa import Config as JepaConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--states", type=int, default=256)
    parser.add_argument("--futures", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    config = merge_presets(Config(), PRESETS, ["small"])
    d = JepaConfig().model.d_model  # the default JEPA's state size
    x_dim = config.future.horizon * (d + 1)
    model = build_model(config, x_dim=x_dim, cond_dim=d, seed=0)
    graphdef, state = nnx.split(model)
    m = args.states * args.futures
    x0 = jax.random.normal(jax.random.key(1), (m, x_dim), jnp.float32)
    h = jax.random.normal(jax.random.key(2), (m, d), jnp.float32)

    peak = matmul_peak(max(5, args.repeats))
    rows = {}
    for nfe in (2, 8):
        fn = jax.jit(lambda state, x0, h, nfe=nfe:
                     integrate(nnx.merge(graphdef, state), x0, h, nfe=nfe, method="euler"))
        seconds = best_time(fn, (state, x0, h), args.repeats)
        # XLA counts a loop body once: one evaluation's FLOPs times NFE
        one = jax.jit(lambda state, x0, h: nnx.merge(graphdef, state)(x0, jnp.zeros(len(x0)), h))
        flops = (flops_of(one.lower(state, x0, h).compile()) or 0.0) * nfe
        rows[str(nfe)] = {
            "seconds": round(seconds, 5),
            "futures_per_s": round(m / seconds),
            "gflops_per_s": round(flops / seconds / 1e9, 1),
            "share_of_peak": round(flops / seconds / (peak["gflops"] * 1e9), 3),
        }
    result = {
        "benchmark": "cfm",
        "preset": "small",
        "states": args.states, "futures_per_state": args.futures, "x_dim": x_dim, "cond_dim": d,
        "method": "euler",
        "params": int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))),
        "matmul_peak_gflops": round(peak["gflops"], 1),
        "by_nfe": rows,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "jax": jax.__version__},
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
