"""World Models C's search speed: evosax CMA-ES (`strates.worldmodels.search.run`, the whole
run one compiled `lax.scan`) against the two CPU packages, pycma (`cma`) and `cmaes`, driven
from a Python loop, on the controller's dream fitness at the `small` preset's sizes; the
same comparison on a sphere (the strategies' own cost); and the dream throughput of M.

    python benchmarks/cmaes.py [--generations 20] [--quick]

Prints one JSON object on stdout. The MDN-RNN is freshly initialised: speed does not depend
on training. Needs the `bench` extra (cma, cmaes).
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and benchmarks/tokenize.py would shadow the
# standard library's `tokenize` (and this file the `cmaes` package): put the repository root
# there instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from strates.core.config import merge_presets  # noqa: E402
from strates.core.perf import best_time, matmul_peak  # noqa: E402
from strates.worldmodels import controller, mdn, search  # noqa: E402
from strates.worldmodels.config import PRESETS, Config  # noqa: E402

SIGMA0 = Config().controller.sigma0  # the default preset's initial step size
RET_SCALE = 0.01  # the training period's std of log returns
COST = 5e-4  # 5 bps per side
TEMPERATURE = 1.0
POOL = (64, 64)  # start states: 64 sequences of 64 bars of random latents, M's state before each bar
EVAL_KEYS = 16  # the common evaluation of each library's final mean: 16 generations' worth of dreams
BLAS_THREADS = 1  # OpenBLAS (numpy's, and scipy's LAPACK behind JAX's CPU eigh, which evosax calls
# each generation): 81 x 81 matrices gain nothing from threads, and on a small loaded machine its
# spinning threads fight XLA's pool (evosax up to 50x and pycma 10x slower seen on 2 cores)
SPHERE_OPTIMUM = 1.0  # the sphere's maximiser is (1, ..., 1): away from the start, and float32 cannot
# shrink the population below its spacing there, so a long run stays finite


def dream_problem(config):
    """The controller's fitness `(population [P, D], key) -> [P]` on a random M with the
    preset's sizes, dreams starting from states like the training period's. Returns
    (M's params, the start pool `(z [N, Z], h [N, H], c [N, H])`, the fitness)."""
    z_dim, hidden = config.vae.latent, config.mdn.hidden
    m = mdn.init(jax.random.key(0), latent=z_dim, hidden=hidden, mixtures=config.mdn.mixtures)
    z = jax.random.normal(jax.random.key(1), (*POOL, z_dim), jnp.float32)
    h, c = jax.jit(controller.hidden_states)(m, z)  # entry t has read bars 0..t-1 with a = 0
    pool = (z.reshape(-1, z_dim), h.reshape(-1, hidden), c.reshape(-1, hidden))
    fitness = controller.dream_fitness(m, controller.sample_starts(*pool, config.controller.dreams),
                                       horizon=config.controller.horizon, temperature=TEMPERATURE,
                                       ret_scale=RET_SCALE, cost=COST)
    return m, pool, fitness


def sphere(pop: jax.Array, key: jax.Array) -> jax.Array:
    del key
    return -jnp.sum((pop - SPHERE_OPTIMUM) ** 2, axis=-1)


def evosax_program(fitness, d: int, *, population: int, generations: int):
    """`search.run`'s computation with the key as an argument, compiled once, so that its
    steady-state speed can be timed apart from the compilation (`search.run` builds and
    compiles its program on each call). `run_evosax` checks that it gives `search.run`'s numbers."""
    from evosax.algorithms import CMA_ES

    x0 = jnp.zeros(d, jnp.float32)
    es = CMA_ES(population_size=population, solution=x0)
    params = es.default_params.replace(std_init=jnp.asarray(SIGMA0, jnp.float32))

    def program(key):
        k_init, k_es, k_fit = jax.random.split(key, 3)
        state = es.init(k_init, x0, params)

        def generation(state, g):
            k_ask, k_tell = jax.random.split(jax.random.fold_in(k_es, g))
            pop, state = es.ask(k_ask, state, params)
            f = fitness(pop, jax.random.fold_in(k_fit, g))
            f = jnp.where(jnp.isfinite(f), f, -jnp.inf)
            state, _ = es.tell(k_tell, pop, -f, state, params)
            return state, (state.mean, f.mean(), f.max(), state.std)

        state, (means, f_mean, f_max, std) = jax.lax.scan(generation, state, jnp.arange(generations))
        return search.SearchResult(means, state.best_solution, -state.best_fitness, f_mean, f_max, std)

    return jax.jit(program)


def run_evosax(fitness, d: int, *, population: int, generations: int, key, repeats: int) -> dict:
    """Compile once, then the best of `repeats` runs of `generations`; also one `search.run`
    call end to end (tracing and compilation included), whose results must match."""
    start = time.perf_counter()
    compiled = evosax_program(fitness, d, population=population, generations=generations).lower(key).compile()
    compile_s = time.perf_counter() - start
    seconds = best_time(compiled, (key,), repeats)
    result = compiled(key)
    start = time.perf_counter()
    reference = jax.block_until_ready(search.run(fitness, jnp.zeros(d), population=population, sigma0=SIGMA0,
                                                 generations=generations, key=key))
    call_s = time.perf_counter() - start
    return {
        "generations": generations,
        "wall_s": seconds,
        "generations_per_s": generations / seconds,
        "compile_s": compile_s,
        "search_run_call_s": call_s,
        "matches_search_run": bool(np.array_equal(np.asarray(result.mean), np.asarray(reference.mean))),
        "max_abs_diff_vs_search_run": float(np.abs(np.asarray(result.mean) - np.asarray(reference.mean)).max()),
        "best_fitness": float(result.best_fitness),
        "final_mean": np.asarray(result.mean[-1]),
    }


class Pycma:
    """pycma behind the interface the host loop uses: `ask() -> [P, D]`, `tell(pop, loss)`
    (minimised), `mean() -> [D]`."""

    def __init__(self, d: int, population: int, seed: int):
        import cma

        # verb_log 0: pycma writes nothing to disk; verbose -9: nothing to the console
        self.es = cma.CMAEvolutionStrategy(np.zeros(d), SIGMA0, {"popsize": population, "seed": seed,
                                                                  "verbose": -9, "verb_log": 0, "verb_disp": 0})

    def ask(self) -> np.ndarray:
        return np.asarray(self.es.ask())

    def tell(self, pop: np.ndarray, loss: np.ndarray) -> None:
        self.es.tell(list(pop), loss.tolist())

    def mean(self) -> np.ndarray:
        return np.asarray(self.es.mean, np.float64)


class Cmaes:
    """The `cmaes` package behind the same interface (it asks one candidate at a time)."""

    def __init__(self, d: int, population: int, seed: int):
        # imported by name: a plain `import cmaes` here reads as this very file to a type checker
        self.es = importlib.import_module("cmaes").CMA(mean=np.zeros(d), sigma=SIGMA0, population_size=population,
                                                        seed=seed)
        self.population = population

    def ask(self) -> np.ndarray:
        return np.stack([self.es.ask() for _ in range(self.population)])

    def tell(self, pop: np.ndarray, loss: np.ndarray) -> None:
        self.es.tell(list(zip(pop, loss.tolist(), strict=True)))

    def mean(self) -> np.ndarray:
        return np.asarray(self.es.mean, np.float64)


HOSTS = {"cma": Pycma, "cmaes": Cmaes}


def run_host(library: str, evaluate: Callable[[np.ndarray, int], np.ndarray], d: int, *, population: int,
             seed: int, budget_s: float | None = None, generations: int | None = None,
             blas_threads: int | None = None) -> dict:
    """`library`'s loop: ask on the host, one call of `evaluate(pop, g)` for the population,
    tell; for `budget_s` of wall time or `generations`, with `blas_threads` BLAS threads
    (None: as set). Warm-up (the fitness's compilation, two calls)
    excluded."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _host_loop(library, evaluate, d, population=population, seed=seed, budget_s=budget_s,
                          generations=generations)


def _host_loop(library, evaluate, d, *, population, seed, budget_s, generations) -> dict:
    start = time.perf_counter()
    for g in range(2):
        evaluate(np.zeros((population, d)), g)
    warmup_s = time.perf_counter() - start
    es = HOSTS[library](d, population, seed)
    best, g = -np.inf, 0
    start = time.perf_counter()

    def more() -> bool:
        return g < generations if generations is not None else time.perf_counter() - start < (budget_s or 0.0)

    while more():
        pop = es.ask()
        f = evaluate(pop, g)
        es.tell(pop, -np.where(np.isfinite(f), f, -np.inf))  # both minimise; non-finite ranks last
        best = max(best, float(np.max(np.where(np.isfinite(f), f, -np.inf))))
        g += 1
    wall = time.perf_counter() - start
    return {"generations": g, "wall_s": wall, "generations_per_s": g / wall, "warmup_s": warmup_s,
            "best_fitness": best, "final_mean": es.mean()}


def jitted_evaluator(fitness, fit_key):
    """The host loops' fitness: the same jitted batched function, generation g on the noise
    `search.run` gives its generation g (`fold_in(fit_key, g)`)."""
    fn = jax.jit(lambda pop, g: fitness(pop, jax.random.fold_in(fit_key, g)))
    return lambda pop, g: np.asarray(fn(np.asarray(pop, np.float32), g), np.float64)


def compare(fitness, d: int, *, population: int, generations: int, key, repeats: int, budget_s: float | None,
            host_generations: int | None) -> dict:
    """evosax for `generations`, then each host library for the same wall time (`budget_s`
    None: evosax's) or for `host_generations`."""
    evosax = run_evosax(fitness, d, population=population, generations=generations, key=key, repeats=repeats)
    evaluate = jitted_evaluator(fitness, jax.random.split(key, 3)[2])
    budget = evosax["wall_s"] if budget_s is None and host_generations is None else budget_s
    rows = {"evosax": evosax}
    for library in ("cma", "cmaes"):
        rows[library] = run_host(library, evaluate, d, population=population, seed=1, budget_s=budget,
                                 generations=host_generations)
    return rows


def final_means_fitness(fitness, rows: dict, d: int) -> dict:
    """Each library's final mean (and the zero controller) scored on the same `EVAL_KEYS`
    keys, all in one population: the same starts and dream noise for all (their mean)."""
    names = ["zero", *rows]
    pop = jnp.asarray(np.stack([np.zeros(d), *(rows[n]["final_mean"] for n in rows)]), jnp.float32)
    fn = jax.jit(fitness)
    scores = np.mean([np.asarray(fn(pop, jax.random.fold_in(jax.random.key(123), i))) for i in range(EVAL_KEYS)],
                     axis=0)
    return {n: _sig(float(s)) for n, s in zip(names, scores, strict=True)}


def _sig(v):
    """Floats to 5 significant digits (fitness values are ~1e-3), everything else as is."""
    return float(f"{v:.5g}") if isinstance(v, float) else v


def summary(rows: dict, sphere_distance: bool = False) -> dict:
    out = {}
    for name, r in rows.items():
        row = {k: _sig(v) for k, v in r.items() if k != "final_mean"}
        if sphere_distance:
            row["final_mean_distance_to_optimum"] = round(float(np.linalg.norm(r["final_mean"] - SPHERE_OPTIMUM)), 6)
        out[name] = row
    rate = {n: r["generations_per_s"] for n, r in rows.items()}
    out["ratio"] = {"evosax_over_cma": round(rate["evosax"] / rate["cma"], 2),
                    "evosax_over_cmaes": round(rate["evosax"] / rate["cmaes"], 2)}
    return out


def dream_throughput(config, m: dict, pool: tuple[jax.Array, jax.Array, jax.Array], *, repeats: int) -> dict:
    """Latent steps/s of `controller.dream` (jitted), without a trader and with a random
    controller, for several numbers of dreams."""
    horizon = config.controller.horizon
    d = controller.size(config.vae.latent, config.mdn.hidden)
    theta = 0.1 * jax.random.normal(jax.random.key(5), (d,), jnp.float32)
    fns = {
        "no_controller": jax.jit(lambda starts, key: controller.dream(
            m, None, starts, key=key, horizon=horizon, temperature=TEMPERATURE, ret_scale=RET_SCALE, cost=COST).pnl),
        "controller": jax.jit(lambda starts, key: controller.dream(
            m, theta, starts, key=key, horizon=horizon, temperature=TEMPERATURE, ret_scale=RET_SCALE, cost=COST).pnl),
    }
    rows = {}
    for s in (256, 1024, 4096):
        starts = controller.sample_starts(*pool, s)(jax.random.key(11))
        rows[str(s)] = {}
        for name, fn in fns.items():
            seconds = best_time(fn, (starts, jax.random.key(7)), repeats)
            rows[str(s)][name] = {"seconds": round(seconds, 5), "latent_steps_per_s": round(s * horizon / seconds)}
    return {"horizon": horizon, "by_dreams": rows}


def blas_threads() -> dict[str, int]:
    """OpenBLAS threads by library as threadpoolctl sees them now."""
    from threadpoolctl import threadpool_info

    return {i["filepath"].rsplit("/", 1)[-1]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=20,
                        help="evosax's generations on the dream fitness; the host libraries get the same wall time")
    parser.add_argument("--quick", action="store_true", help="few generations and repeats: a smoke run")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    # load the LAPACK behind JAX's CPU eigh (scipy's OpenBLAS) so that the limit reaches it too
    jax.block_until_ready(jnp.linalg.eigh(jnp.eye(2)))
    default = blas_threads()
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        result = measure(args, default)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


def measure(args, default_blas: dict[str, int]) -> dict:
    generations = 3 if args.quick else args.generations
    repeats = 1 if args.quick else 3
    sphere_generations = 300 if args.quick else 3000
    sphere_host_generations = 50 if args.quick else 400
    default_threads = max(default_blas.values(), default=1)

    config = merge_presets(Config(), PRESETS, ["small"])
    cc = config.controller
    d = controller.size(config.vae.latent, config.mdn.hidden)
    key = jax.random.key(0)

    peak = matmul_peak(3 if args.quick else 5)
    m, pool, fitness = dream_problem(config)
    fitness_s = best_time(jax.jit(fitness), (SIGMA0 * jax.random.normal(jax.random.key(2), (cc.population, d)),
                                             jax.random.key(3)), repeats)

    dream_rows = compare(fitness, d, population=cc.population, generations=generations, key=key, repeats=repeats,
                         budget_s=None, host_generations=None)
    dream = summary(dream_rows)
    dream["fitness_call_s"] = round(fitness_s, 5)
    dream["fitness_share_of_generation"] = {n: round(fitness_s * dream_rows[n]["generations_per_s"], 3)
                                            for n in dream_rows}
    dream["final_mean_fitness_common_eval"] = final_means_fitness(fitness, dream_rows, d)

    sphere_rows = compare(sphere, d, population=cc.population, generations=sphere_generations, key=key,
                          repeats=max(repeats, 3), budget_s=None, host_generations=sphere_host_generations)
    sphere_summary = summary(sphere_rows, sphere_distance=True)
    numpy_sphere = lambda pop, g: -np.sum((pop - SPHERE_OPTIMUM) ** 2, axis=-1)  # noqa: E731
    for label, blas in (("host_numpy_fitness", None), ("host_numpy_fitness_default_blas_threads", default_threads)):
        sphere_summary[label] = {
            lib: {k: _sig(v) for k, v in run_host(
                lib, numpy_sphere, d, population=cc.population, seed=1, generations=sphere_host_generations,
                blas_threads=blas).items() if k not in ("final_mean", "warmup_s")}
            for lib in ("cma", "cmaes")}
    # evosax too calls OpenBLAS (LAPACK's eigh) each generation: its speed at the default threads
    from threadpoolctl import threadpool_limits

    program = evosax_program(sphere, d, population=cc.population, generations=sphere_host_generations)
    compiled = program.lower(key).compile()
    with threadpool_limits(limits=default_threads, user_api="blas"):
        seconds = best_time(compiled, (key,), 1)
    sphere_summary["evosax_default_blas_threads"] = {"generations": sphere_host_generations,
                                                     "wall_s": _sig(seconds),
                                                     "generations_per_s": _sig(sphere_host_generations / seconds)}

    device = jax.devices()[0]
    return {
        "benchmark": "cmaes",
        "preset": "small",
        "sizes": {"parameters": d, "latent": config.vae.latent, "hidden": config.mdn.hidden,
                  "mixtures": config.mdn.mixtures, "population": cc.population, "dreams": cc.dreams,
                  "horizon": cc.horizon, "sigma0": SIGMA0, "x0": "zeros", "temperature": TEMPERATURE,
                  "ret_scale": RET_SCALE, "cost": COST, "start_pool": POOL[0] * POOL[1]},
        "libraries": {"evosax": _version("evosax"), "cma": _version("cma"), "cmaes": _version("cmaes")},
        "matmul_peak_gflops": round(peak["gflops"], 1),
        "threads": {
            "jax_cpu": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "openblas_default": default_blas,
            "openblas_used": blas_threads(),
        },
        "dream_fitness": dream,
        "sphere": sphere_summary,
        "target": {"evosax_vs_cma_ge_10x": dream["ratio"]["evosax_over_cma"] >= 10.0},
        "dream": dream_throughput(config, m, pool, repeats=max(repeats, 3)),
        "notes": (
            "dream_fitness: evosax runs `generations` in one compiled lax.scan (timed: best of `repeats` runs of a "
            "copy of search.run's program with the key as an argument, compiled once; matches_search_run checks "
            "that it gives search.run's means bitwise; search_run_call_s is one search.run call end to end, "
            "compilation included, which is what a caller pays per call). cma (pycma) and cmaes then run "
            "their ask/tell loops on the host for the same wall time; every library's population is evaluated "
            "by the same jitted batched fitness, one call per generation, generation g on the same starts and "
            "dream noise in all three (fold_in of the same key). best_fitness: the best candidate seen, on its "
            "own generation's noise; final_mean_fitness_common_eval: each final mean scored on the same "
            f"{EVAL_KEYS} keys (and the zero controller). fitness_call_s: one call of that fitness for a "
            "population, the floor of any library's time per generation (fitness_share_of_generation: that "
            "call's share of each library's time per generation, which can pass 1 within the noise). "
            "sphere: the same loops with a jitted sphere (the strategies' own cost plus, for the host "
            "libraries, one dispatch and transfer per generation); host_numpy_fitness: the host libraries "
            "with the sphere in numpy (no JAX at all). Threads: JAX's XLA pool as it comes (threads.jax_cpu); "
            f"OpenBLAS, numpy's and the LAPACK behind JAX's CPU eigh alike, limited to {BLAS_THREADS} "
            "(threads.openblas_used) for every library; the *_default_blas_threads rows show the same at "
            "OpenBLAS's default. Warm-up and compilation are excluded from generations_per_s and reported "
            "apart. target: evosax over pycma in generations/s on the dream fitness. dream: latent steps/s "
            "(dreams x horizon / seconds) of controller.dream jitted, best of `repeats`."),
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "jax": jax.__version__,
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
