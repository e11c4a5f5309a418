"""Strate I speed: encode throughput (bars/s) and training step time of the tokenizer, with
model FLOP/s as a share of this machine's fp32 matmul peak, all measured in one run.

- Peak: the best of several jitted fp32 matmuls (square, 1024..2048) in FLOP/s.
- Model FLOPs: XLA's own cost analysis of the compiled function (no hand counting).
- Encode: the causal encoder + FSQ over [B, T, F] windows of random features.
- Train step: forward + backward + AdamW update of the training loss (with the usage term).

Target (issue #3): encoding at >= 30% of the matmul peak.

    python benchmarks/tokenize.py [--preset small] [--batch 32] [--length 2048] [--repeats 20]

Prints one JSON object on stdout.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and the file's name would
# shadow the standard library's `tokenize` (imported by logging, and so by JAX): put the
# repository root there instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from strates.core.perf import best_time, flops_of, matmul_peak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    from flax import nnx

    from strates.core.config import merge_presets
    from strates.core.train import TrainState, make_optimizer, train_step
    from strates.fsq import PRESETS, Config
    from strates.fsq.features import FEATURES
    from strates.fsq.train import build_model, make_loss, split_model

    config = merge_presets(Config(), PRESETS, [args.preset])
    model = build_model(config.model, seed=0)
    graphdef, params = split_model(model)
    x = jax.random.normal(jax.random.key(2), (args.batch, args.length, len(FEATURES)), jnp.float32)

    @jax.jit
    def encode(params, x):
        _, idx = nnx.merge(graphdef, params).tokenize(x)
        return idx

    peak = matmul_peak(max(5, args.repeats // 2))
    peak["flops_per_s"] = peak["gflops"] * 1e9
    enc_s = best_time(encode, (params, x), args.repeats)
    enc_flops = flops_of(encode.lower(params, x).compile()) or 0.0

    window = config.data.window
    batch = jax.random.normal(jax.random.key(3), (config.train.batch_size, window, len(FEATURES)), jnp.float32)
    optimizer = make_optimizer(config.train)
    loss_fn = make_loss(graphdef, config)
    state = TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))
    step = jax.jit(lambda s, b: train_step(s, b, key=jax.random.key(0), loss_fn=loss_fn, optimizer=optimizer))
    step_s = best_time(step, (state, batch), args.repeats)
    step_flops = flops_of(step.lower(state, batch).compile()) or 0.0

    bars = args.batch * args.length
    result = {
        "benchmark": "tokenize",
        "preset": args.preset,
        "params": int(sum(np.prod(p.shape) for p in jax.tree.leaves(params))),
        "matmul_peak_gflops": round(peak["flops_per_s"] / 1e9, 1),
        "matmul_peak_by_size": peak["by_size"],
        "encode": {
            "batch": args.batch, "length": args.length, "seconds": round(enc_s, 5),
            "bars_per_s": round(bars / enc_s),
            "gflops_per_s": round(enc_flops / enc_s / 1e9, 1),
            "share_of_peak": round(enc_flops / enc_s / peak["flops_per_s"], 3),
        },
        "train_step": {
            "batch": config.train.batch_size, "window": window, "seconds": round(step_s, 5),
            "gflops_per_s": round(step_flops / step_s / 1e9, 1),
            "share_of_peak": round(step_flops / step_s / peak["flops_per_s"], 3),
        },
        "target_encode_share_of_peak": 0.30,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "jax": jax.__version__,
                    "device": str(jax.devices()[0].device_kind)},
    }
    result["meets_target"] = result["encode"]["share_of_peak"] >= 0.30
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
