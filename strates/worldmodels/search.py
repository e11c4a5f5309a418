"""C's search: CMA-ES (Hansen & Ostermeier 2001; Hansen 2016, "The CMA Evolution Strategy: A
Tutorial") from evosax, the whole run compiled as one `lax.scan` over generations, the
population's fitness evaluated in one batched call.

evosax minimises; `run` maximises `fitness` (it hands evosax the negated values), so the
callers speak of PnL, not of losses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

FitnessFn = Callable[[jax.Array, jax.Array], jax.Array]
"""`fitness(population [P, D], key) -> [P]`, higher is better; traced under `jit`. The key
is the generation's: every candidate of a generation sees the same random numbers."""


class SearchResult(NamedTuple):
    """A CMA-ES run of G generations over D parameters.

    mean: `[G, D]` the search distribution's mean after each generation.
    best: `[D]` the best candidate evaluated in any generation; best_fitness `[]` its fitness
      (on its own generation's random numbers).
    fitness_mean, fitness_max: `[G]` the population's mean and best fitness per generation.
    std: `[G]` the global step size σ after each generation.
    """

    mean: jax.Array
    best: jax.Array
    best_fitness: jax.Array
    fitness_mean: jax.Array
    fitness_max: jax.Array
    std: jax.Array


def run(fitness: FitnessFn, x0: jax.Array, *, population: int, sigma0: float, generations: int,
        key: jax.Array) -> SearchResult:
    """Maximise `fitness` from the mean `x0 [D]` with step size `sigma0`, `population`
    candidates per generation, for `generations`. Consumes `key` (split once into the
    initialisation's, the strategy's and the fitness's streams; generation g folds in g).
    A non-finite fitness counts as the worst; `fitness_mean` averages the finite ones.

    BLAS runs single-threaded inside: CMA-ES decomposes its D x D covariance every
    generation, and on a CPU JAX sends that to scipy's OpenBLAS, whose thread pool costs far
    more than the small decomposition (up to 50x slower on a busy 2-core machine)."""
    from evosax.algorithms import CMA_ES
    from threadpoolctl import threadpool_limits

    es = CMA_ES(population_size=population, solution=x0)
    params = es.default_params.replace(std_init=jnp.asarray(sigma0, jnp.float32))
    k_init, k_es, k_fit = jax.random.split(key, 3)

    @jax.jit
    def search(x0):
        state = es.init(k_init, x0, params)

        def generation(state, g):
            k_ask, k_tell = jax.random.split(jax.random.fold_in(k_es, g))
            pop, state = es.ask(k_ask, state, params)
            f = fitness(pop, jax.random.fold_in(k_fit, g))
            ok = jnp.isfinite(f)
            f = jnp.where(ok, f, -jnp.inf)
            state, _ = es.tell(k_tell, pop, -f, state, params)
            mean = jnp.where(ok, f, 0.0).sum() / jnp.maximum(ok.sum(), 1)
            return state, (state.mean, mean, f.max(), state.std)

        state, (means, f_mean, f_max, std) = jax.lax.scan(generation, state, jnp.arange(generations))
        return SearchResult(means, state.best_solution, -state.best_fitness, f_mean, f_max, std)

    jnp.linalg.eigh(jnp.eye(2)).eigenvalues.block_until_ready()  # loads the BLAS the limit below must see
    with threadpool_limits(1, user_api="blas"):
        return jax.block_until_ready(search(jnp.asarray(x0, jnp.float32)))
