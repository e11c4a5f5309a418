"""Timing helpers shared by the benchmarks: best-of-N wall time, XLA FLOP counts, and
this machine's fp32 matmul peak (the yardstick for "share of peak" figures)."""

from __future__ import annotations

import time


def best_time(fn, args, repeats: int) -> float:
    """Best wall time in seconds of `fn(*args)` over `repeats` runs, after one warm-up."""
    import jax

    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def flops_of(compiled) -> float | None:
    """FLOPs of a compiled XLA executable from its cost analysis (None if unavailable).
    XLA counts a loop body once, whatever its trip count."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float(cost.get("flops", 0.0)) if cost else None


def matmul_peak(repeats: int, sizes: tuple[int, ...] = (1024, 1536, 2048)) -> dict:
    """Best fp32 GFLOP/s of jitted square matmuls: {"gflops", "by_size"}."""
    import jax
    import jax.numpy as jnp

    rates = {}
    for n in sizes:
        a = jax.random.normal(jax.random.key(n), (n, n), jnp.float32)
        b = jax.random.normal(jax.random.key(n + 1), (n, n), jnp.float32)
        rates[n] = 2 * n**3 / best_time(jax.jit(jnp.matmul), (a, b), max(2 * repeats, 10)) / 1e9
    return {"gflops": max(rates.values()), "by_size": {str(n): round(r, 1) for n, r in rates.items()}}
