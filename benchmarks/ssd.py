"""SSD scan: speed and memory of each form, side by side in one run.

At batch 2, 8 heads x 64 channels, state 64, one group (G = 1), fp32, for L in --lengths:

- forward and forward+backward time (jit, best of --repeats, `block_until_ready`) of the
  reference `lax.scan`, the chunked pure-JAX form and, where it lowers natively (TPU/GPU),
  the Pallas kernel; on CPU Pallas only runs in interpret mode and is reported as skipped;
- peak temporary memory, `compile().memory_analysis().temp_size_in_bytes`;
- model FLOPs from `compile().cost_analysis()["flops"]` of the loop-free (parallel) chunked
  schedule (XLA counts a while-loop body once, so scan-based forms cannot be counted directly),
  and the achieved rate as a share of this machine's fp32 matmul peak, measured in the same run
  (best of jitted square matmuls 1024-2048, before and after the SSD timings);
- decode: `ssd_step` time after prefilling 128, 1024 and 8192 steps (should be flat);
- which form `ssd(impl="auto")` picks (one rule for inference and training), against which is
  fastest at each L. "chunked" runs the default schedule for the backend ("sequential" on
  CPU); "chunked_parallel" the other one, for comparison.

Targets at L = 2048: chunked fwd+bwd >= 10x faster than the reference, temp memory <= 1/10 of
the reference's, fwd+bwd >= 30% of the matmul peak.

    python benchmarks/ssd.py [--lengths 512,2048,8192] [--repeats 5] [--reference-backward-max 8192]

Prints one JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and benchmarks/tokenize.py would shadow the
# standard library's `tokenize` (imported by `logging` via `linecache`): use the repo root instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from kernels.ssd import resolve_impl, ssd_chunked, ssd_pallas, ssd_reference, ssd_step  # noqa: E402
from kernels.ssd.chunked import resolve_schedule  # noqa: E402
from strates.core.perf import flops_of, matmul_peak  # noqa: E402


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def make_inputs(batch, length, heads, head_dim, groups, state, seed=0):
    k = jax.random.split(jax.random.key(seed), 8)
    x = jax.random.normal(k[0], (batch, length, heads, head_dim), jnp.float32)
    dt = jax.nn.softplus(jax.random.normal(k[1], (batch, length, heads)) - 2.0)
    A = -jnp.exp(jax.random.uniform(k[2], (heads,), minval=-1.0, maxval=1.0))
    B = jax.random.normal(k[3], (batch, length, groups, state)) / state**0.5
    C = jax.random.normal(k[4], (batch, length, groups, state)) / state**0.5
    D = jax.random.normal(k[5], (heads,))
    wy = jax.random.normal(k[6], x.shape)
    ws = jax.random.normal(k[7], (batch, heads, head_dim, state))
    return (x, dt, A, B, C, D), (wy, ws)


def loss_of(form):
    def loss(x, dt, A, B, C, D, wy, ws):
        y, final = form(x, dt, A, B, C, D)
        return jnp.sum(y * wy) + jnp.sum(final * ws)

    return jax.grad(loss, argnums=tuple(range(6)))


def model_gflop(chunk: int, inputs, weights) -> dict:
    """FLOPs of the chunked SSD algorithm, from XLA's cost analysis of its loop-free schedule.

    `cost_analysis` counts a while-loop body once, so forms built on `lax.scan` (the reference,
    the sequential schedule) under-report; the parallel schedule has only the C-step state
    scan (elementwise) in a loop, so its count is the algorithm's matmul and elementwise work.
    Rematerialised recompute is not counted (the usual model-FLOPs convention).
    """
    form = lambda *a: ssd_chunked(*a, chunk=chunk, schedule="parallel")  # noqa: E731
    fwd = jax.jit(form).lower(*inputs).compile()
    both = jax.jit(loss_of(form)).lower(*inputs, *weights).compile()
    return {"fwd": (flops_of(fwd) or 0.0) / 1e9, "fwd_bwd": (flops_of(both) or 0.0) / 1e9}


def temp_mb(compiled) -> float | None:
    """Peak temporary memory of a compiled executable in MiB (None where the backend does not say)."""
    stats = compiled.memory_analysis()
    return None if stats is None else round(stats.temp_size_in_bytes / 2**20, 2)


def measure(forms: dict, inputs, weights, repeats: int, backward: dict) -> dict:
    """Forward (and forward+backward) time and temp memory of each form at one shape.

    Everything is compiled first; then the timed calls are interleaved round by round across
    forms, and each keeps its best, so that load from other processes hits all forms alike
    (3 x `repeats` rounds; the reference's forward+backward, which is slow, in `repeats` of them).
    """
    args = (*inputs, *weights)
    runs, out = [], {}
    for name, form in forms.items():
        out[name] = {}
        fwd = jax.jit(form).lower(*inputs).compile()
        out[name]["fwd_temp_mb"] = temp_mb(fwd)
        runs.append((name, "fwd_ms", fwd, inputs))
        if backward[name]:
            both = jax.jit(loss_of(form)).lower(*args).compile()
            out[name]["fwd_bwd_temp_mb"] = temp_mb(both)
            runs.append((name, "fwd_bwd_ms", both, args))
    best = {}
    for _, _, fn, fn_args in runs:  # warm-up
        jax.block_until_ready(fn(*fn_args))
    for i in range(3 * repeats):  # the reference's backward is slow: it runs every third round
        for name, key, fn, fn_args in runs:
            if name == "reference" and key == "fwd_bwd_ms" and i % 3:
                continue
            start = time.perf_counter()
            jax.block_until_ready(fn(*fn_args))
            best[name, key] = min(best.get((name, key), float("inf")), time.perf_counter() - start)
    for (name, key), seconds in best.items():
        out[name][key] = round(seconds * 1e3, 3)
    return out


def add_rates(row: dict, model: dict, peak: float) -> None:
    """Model GFLOP/s and share of the matmul peak, for forms that run the chunked algorithm."""
    for key in ("fwd", "fwd_bwd"):
        if f"{key}_ms" in row:
            rate = model[key] / (row[f"{key}_ms"] / 1e3)
            row[f"{key}_model_gflops_rate"] = round(rate, 1)
            row[f"{key}_share_of_matmul_peak"] = round(rate / peak, 3)


def decode_times(args, prefills, repeats: int) -> dict:
    """`ssd_step` time from states that summarise `prefills` steps of history."""
    b, h, p, g, n = args.batch, args.heads, args.head_dim, args.groups, args.state
    step = jax.jit(ssd_step)

    def many_steps(state, xs, dts, A, Bs, Cs, D):  # 256 steps in one dispatch
        def body(s, inp):
            y, s = ssd_step(s, inp[0], inp[1], A, inp[2], inp[3], D)
            return s, y

        return jax.lax.scan(body, state, (xs, dts, Bs, Cs))

    many = jax.jit(many_steps)
    k = jax.random.split(jax.random.key(7), 4)
    xs = jax.random.normal(k[0], (256, b, h, p))
    dts = jax.nn.softplus(jax.random.normal(k[1], (256, b, h)) - 2.0)
    Bs = jax.random.normal(k[2], (256, b, g, n)) / n**0.5
    Cs = jax.random.normal(k[3], (256, b, g, n)) / n**0.5
    prefill = jax.jit(lambda *a: ssd_chunked(*a, chunk=args.chunk))
    calls = {}
    for length in prefills:
        (x, dt, A, B, C, D), _ = make_inputs(b, length, h, p, g, n, seed=length)
        _, state = prefill(x, dt, A, B, C, D)
        calls[str(length)] = {
            "step_call_us": (step, (state, xs[0], dts[0], A, Bs[0], Cs[0], D), 1),
            "step_in_scan_us": (many, (state, xs, dts, A, Bs, Cs, D), 256),
        }
    best: dict = {}
    for fn, fn_args, _ in (c for row in calls.values() for c in row.values()):
        jax.block_until_ready(fn(*fn_args))
    for _ in range(max(10 * repeats, 100)):  # interleaved across history lengths
        for length, row in calls.items():
            for key, (fn, fn_args, steps) in row.items():
                start = time.perf_counter()
                jax.block_until_ready(fn(*fn_args))
                seconds = (time.perf_counter() - start) / steps
                best[length, key] = min(best.get((length, key), float("inf")), seconds)
    out = {length: {key: round(best[length, key] * 1e6, 2) for key in row} for length, row in calls.items()}
    in_scan = [v["step_in_scan_us"] for v in out.values()]
    return {"by_prefill_length": out, "max_over_min_in_scan": round(max(in_scan) / min(in_scan), 2),
            "note": "step_call_us includes Python dispatch; step_in_scan_us is one step inside a jitted "
                    "256-step scan"}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--lengths", default="512,2048,8192")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--state", type=int, default=64)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--reference-backward-max", type=int, default=8192,
                        help="longest L at which the reference's fwd+bwd is measured (it stores L states)")
    parser.add_argument("--prefills", default="128,1024,8192")
    args = parser.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    backend = jax.default_backend()

    log("matmul peak ...")
    peak = matmul_peak(args.repeats)
    forms = {
        "reference": ssd_reference,
        "chunked": lambda *a: ssd_chunked(*a, chunk=args.chunk),  # schedule "auto"
        "chunked_parallel": lambda *a: ssd_chunked(*a, chunk=args.chunk, schedule="parallel"),
    }
    native_pallas = backend != "cpu"
    if native_pallas:
        forms["pallas"] = lambda *a: ssd_pallas(*a, chunk=args.chunk, interpret=False)

    results: dict = {name: {} for name in forms}
    if not native_pallas:
        results["pallas"] = {
            "skipped": "no native Pallas lowering on CPU; interpret mode emulates the kernel op by op "
            "and is a correctness path (tested in tests/kernels), not a speed path"
        }
    models = {}
    for length in lengths:
        inputs, weights = make_inputs(args.batch, length, args.heads, args.head_dim, args.groups, args.state)
        model = models[str(length)] = model_gflop(args.chunk, inputs, weights)
        repeats = args.repeats if length <= 2048 else max(2, args.repeats // 2)
        backward = {name: not (name == "reference" and length > args.reference_backward_max) for name in forms}
        log(f"L={length}: {', '.join(forms)} ...")
        rows = measure(forms, inputs, weights, repeats, backward)
        for name, row in rows.items():
            if not backward[name]:
                row["fwd_bwd_skipped"] = f"L > --reference-backward-max={args.reference_backward_max}"
            if name != "reference":
                add_rates(row, model, peak["gflops"])
            results[name][str(length)] = row

    log("matmul peak again ...")
    again = matmul_peak(args.repeats)  # the best of both: a peak measured under a lull would be higher
    if again["gflops"] > peak["gflops"]:
        for rows in results.values():
            for row in rows.values() if "skipped" not in rows else ():
                for key in ("fwd", "fwd_bwd"):
                    if f"{key}_share_of_matmul_peak" in row:
                        row[f"{key}_share_of_matmul_peak"] = round(row[f"{key}_model_gflops_rate"] / again["gflops"], 3)
        peak = again

    log("decode ...")
    decode = decode_times(args, [int(v) for v in args.prefills.split(",")], args.repeats)

    def fastest(length_key, field):
        times = {name: rows[length_key][field] for name, rows in results.items()
                 if field in rows.get(length_key, {})}
        return min(times, key=times.__getitem__) if times else None

    ratios: dict = {}
    key = "2048" if "2048" in results["chunked"] else str(lengths[len(lengths) // 2])
    ref, chk = results["reference"][key], results["chunked"][key]
    if "fwd_bwd_ms" in ref:
        ratios[f"chunked_fwd_bwd_speedup_over_reference_L{key}"] = round(ref["fwd_bwd_ms"] / chk["fwd_bwd_ms"], 2)
        ratios[f"chunked_over_reference_fwd_bwd_temp_memory_L{key}"] = round(
            chk["fwd_bwd_temp_mb"] / ref["fwd_bwd_temp_mb"], 4)
    ratios[f"chunked_fwd_speedup_over_reference_L{key}"] = round(ref["fwd_ms"] / chk["fwd_ms"], 2)
    ratios[f"chunked_fwd_bwd_share_of_matmul_peak_L{key}"] = chk.get("fwd_bwd_share_of_matmul_peak")
    ratios[f"chunked_fwd_share_of_matmul_peak_L{key}"] = chk.get("fwd_share_of_matmul_peak")
    ratios["targets"] = {"speedup": ">= 10", "temp_memory": "<= 0.1", "share_of_peak": ">= 0.30"}

    auto = {
        "backend": backend,
        "pick_inference_and_training": resolve_impl("auto"),
        "which_runs_form": {"xla": "chunked", "pallas": "pallas", "reference": "reference"}[resolve_impl("auto")],
        "fastest_forward_by_L": {k: fastest(k, "fwd_ms") for k in map(str, lengths)},
        "fastest_fwd_bwd_by_L": {k: fastest(k, "fwd_bwd_ms") for k in map(str, lengths)},
    }
    report = {
        "benchmark": "ssd",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "backend": backend,
                    "device": str(jax.devices()[0].device_kind), "jax": jax.__version__,
                    "load_average_1_5_15min_at_end": [round(v, 2) for v in os.getloadavg()]},
        "chunked_schedule": resolve_schedule("auto"),
        "config": {"batch": args.batch, "heads": args.heads, "head_dim": args.head_dim, "state": args.state,
                   "groups": args.groups, "chunk": args.chunk, "dtype": "float32", "lengths": lengths,
                   "repeats": args.repeats},
        "matmul_peak_gflops": round(peak["gflops"], 1),
        "matmul_peak_by_size": peak["by_size"],
        "model_gflop_by_L": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in models.items()},
        "forms": results,
        "decode": decode,
        "ratios": ratios,
        "auto": auto,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
