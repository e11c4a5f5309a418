"""The training loop every stage shares: a pure jitted step, Orbax checkpoints, resume,
and a guard against non-finite steps.

Parameters are a pytree. A stage splits its model with
`graphdef, params = nnx.split(model, nnx.Param)` and its loss merges it back with
`nnx.merge(graphdef, params)`, so the whole train state is a plain pytree that `jit` can
donate and Orbax can save.

`train` reads top to bottom in a fixed order (as big_vision's loops do):
  1. the optimizer, the abstract train state (`jax.eval_shape`) and its shardings (from the
     compiled initialiser, which is not run yet);
  2. restore the latest checkpoint in `checkpoint_dir`, or run the initialiser;
  3. the jitted step, with the train state donated;
  4. the loop: step, watch for non-finite steps, save, log.

Step numbers count optimizer steps done. The step that takes the state from `s` to `s + 1`
reads `batches(s)` and `jax.random.fold_in(key, s)`; logs, checkpoints and errors call it
step `s + 1`. A checkpoint of step `s` resumes with `batches(s)`, so a resumed run sees
exactly the batches and keys an uninterrupted run would, and ends with the same parameters.

Non-finite steps (convention 11): inside the step, a loss or gradient norm that is not
finite leaves params and optimizer state unchanged (the step is skipped, not applied);
the host counts such steps in a row and raises `NonFiniteError` (exit code 6) after
`max_bad_steps`. A checkpoint never holds non-finite parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from strates.core import checkpoints
from strates.core.errors import ConfigError, NonFiniteError

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]
"""`loss_fn(params, batch, key) -> (loss [], metrics {name: []})`, traced under `jit`."""

@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to optimise, checkpoint and log; the `train` section of a stage's config.

    steps: optimizer steps in all (a resumed run counts those already done).
    learning_rate: peak rate, reached after `warmup_steps` of linear warm-up from 0, then
      cosine decay to `learning_rate * min_lr_ratio` at `steps`.
    weight_decay: AdamW's decoupled decay; grad_clip: maximum global gradient norm.
    checkpoint_every: steps between checkpoints; the last step is always saved.
    max_to_keep: checkpoints kept on disk (the oldest are deleted).
    max_bad_steps: non-finite steps in a row before training stops.
    log_every: steps between logged metrics; the last step is always logged.
    seed: the stage splits `jax.random.key(seed)` into its named keys (model, data, train);
      `train` itself takes its key as an argument.
    batch_size: read by the stage's data pipeline; the loop only passes batches on.
    """

    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    max_to_keep: int = 2
    max_bad_steps: int = 3
    log_every: int = 50
    seed: int = 0

    def __post_init__(self):
        counts = ("steps", "batch_size", "checkpoint_every", "max_to_keep", "max_bad_steps",
                  "log_every")
        for name in counts:
            value = getattr(self, name)
            _require(name, value, _is_int(value) and value >= 1, "an integer >= 1")
        w, lr, ratio, wd, clip = (self.warmup_steps, self.learning_rate, self.min_lr_ratio,
                                  self.weight_decay, self.grad_clip)
        _require("warmup_steps", w, _is_int(w) and w >= 0, "an integer >= 0")
        _require("seed", self.seed, _is_int(self.seed), "an integer")
        _require("learning_rate", lr, _is_number(lr) and lr > 0, "a finite number > 0")
        _require("min_lr_ratio", ratio, _is_number(ratio) and 0 <= ratio <= 1, "a number in [0, 1]")
        _require("weight_decay", wd, _is_number(wd) and wd >= 0, "a finite number >= 0")
        _require("grad_clip", clip, _is_number(clip) and clip > 0, "a finite number > 0")
        if self.warmup_steps >= self.steps:
            raise ConfigError(
                f"train.warmup_steps ({self.warmup_steps}) must be below "
                f"train.steps ({self.steps})",
                fix=f"shorten the warm-up, e.g. --set train.warmup_steps={self.steps // 10}",
                field="train.warmup_steps",
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(name: str, value: Any, ok: bool, rule: str) -> None:
    if not ok:
        default = TrainConfig.__dataclass_fields__[name].default
        raise ConfigError(
            f"train.{name} = {value!r}: must be {rule}",
            fix=f"set it to {rule}, e.g. --set train.{name}={default}",
            field=f"train.{name}",
        )


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train` returns.

    params: the parameters after `step` steps (same tree, shapes and shardings as given).
    step: steps done: `config.steps`, or `stop_after` when that came first.
    restored_from: the checkpoint step this call resumed from; None when it started afresh.
    history: one dict per logged step of this call, in order: `{"step": int, "loss",
      "grad_norm", "lr", "finite" (1.0 or 0.0), **loss_fn metrics}` as Python floats, the
      values of that step (not averages); the loop's names win over the loss's.
    """

    params: Any
    step: int
    restored_from: int | None
    history: list[dict]


class TrainState(NamedTuple):
    """The whole state of training; a pytree that `jit` donates and Orbax saves."""

    step: jax.Array  # [] int32: optimizer steps done, skipped non-finite steps included
    params: Any
    opt_state: optax.OptState


def make_schedule(config: TrainConfig) -> optax.Schedule:
    """Linear warm-up from 0 to `learning_rate`, then cosine decay to `* min_lr_ratio`."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=config.steps,
        end_value=config.learning_rate * config.min_lr_ratio,
    )


def make_optimizer(config: TrainConfig, *, frozen: Any = None) -> optax.GradientTransformation:
    """Clip by global norm, then AdamW on `make_schedule(config)`.

    The learning rate is injected as a hyperparameter, so the rate of the latest update
    can be read back from the optimizer state (`learning_rate`). `frozen` (a pytree of
    bools shaped like the params, or a function of the params giving one) marks leaves the
    optimizer must leave alone: no update, no weight decay (e.g. an EMA target network,
    which `post_update` moves instead).
    """
    tx = optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.inject_hyperparams(optax.adamw)(
            learning_rate=make_schedule(config), weight_decay=config.weight_decay
        ),
    )
    if frozen is None:
        return tx
    if callable(frozen):
        labels = lambda params: jax.tree.map(lambda f: "frozen" if f else "train", frozen(params))  # noqa: E731
    else:
        labels = jax.tree.map(lambda f: "frozen" if f else "train", frozen)
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def learning_rate(opt_state: optax.OptState) -> jax.Array:
    """The learning rate of the latest update in a `make_optimizer` state ([] float32)."""
    return optax.tree_utils.tree_get(
        opt_state, "learning_rate", filtering=lambda _, value: isinstance(value, jax.Array)
    )


def train_step(
    state: TrainState,
    batch: Any,
    *,
    key: jax.Array,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    post_update: Callable[[Any, jax.Array], Any] | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step: `(state, batch, *, key) -> (state, metrics)`. Pure; jit it.

    `key` is the run's train key; this step consumes `jax.random.fold_in(key, state.step)`
    (passed to `loss_fn`). When the loss or the gradient norm is not finite, params and
    optimizer state come back unchanged and `metrics["finite"]` is False; `step` advances
    either way, so step `s` always reads batch `s`. `post_update(params, step)` runs after
    the optimizer update (e.g. an EMA of some params into others).
    """
    step_key = jax.random.fold_in(key, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, metrics), grads = grad_fn(state.params, batch, step_key)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if post_update is not None:
        params = post_update(params, state.step)

    def keep_if_finite(new, old):
        return jnp.where(finite, new, old)

    state = TrainState(
        step=state.step + 1,
        params=jax.tree.map(keep_if_finite, params, state.params),
        opt_state=jax.tree.map(keep_if_finite, opt_state, state.opt_state),
    )
    metrics = {
        **metrics,
        "loss": loss,
        "grad_norm": grad_norm,
        "lr": learning_rate(state.opt_state),
        "finite": finite,
    }
    return state, metrics


def train(
    *,
    loss_fn: LossFn,
    params: Any,
    batches: Callable[[int], Any],
    config: TrainConfig,
    checkpoint_dir: str | os.PathLike[str],
    key: jax.Array,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    frozen: Any = None,
    post_update: Callable[[Any, jax.Array], Any] | None = None,
) -> TrainResult:
    """Train `params` for `config.steps`, resuming from the latest checkpoint in `checkpoint_dir`.

    loss_fn: `(params, batch, key) -> (loss [], {name: []})`, traced under `jit`; the
      metrics must be scalars.
    params: initial parameters (a pytree of arrays, placed and sharded as training should
      run); ignored, apart from their structure and shardings, when a checkpoint exists.
      Sharded params need their mesh set (`with jax.set_mesh(mesh): train(...)`, explicit
      axes), so that the optimizer state is sharded like them.
    batches: `batches(s)` is the batch for step `s` (0-based), built on the host; it must
      depend on `s` alone, so that a resumed run sees the batches it would have seen.
    key: the train key; step `s` consumes `fold_in(key, s)`. Pass the same key on resume.
    on_log: called as `on_log(step, metrics)` with Python floats every `log_every` steps
      and after the last step of this call.
    stop_after: stop once this many steps are done in all (saving a checkpoint there), e.g.
      to train in slices; a later call resumes. At most `config.steps` are ever run.
    frozen: leaves the optimizer leaves alone (see `make_optimizer`).
    post_update: `(params, step) -> params` inside the jitted step, after the update.

    Raises `NonFiniteError` after `max_bad_steps` non-finite steps in a row; the checkpoints
    written before are kept. Waits for every checkpoint write before returning or raising.
    """
    if stop_after is not None and (not _is_int(stop_after) or stop_after < 0):
        raise ConfigError(
            f"stop_after = {stop_after!r}: must be an integer >= 0", field="stop_after"
        )
    end = config.steps if stop_after is None else min(stop_after, config.steps)
    # Random bits that do not depend on how an array is sharded: the same key draws the same
    # numbers on one device and on a mesh, so a sharded run trains like an unsharded one (the
    # default since JAX 0.5; set here so an older JAX or JAX_THREEFRY_PARTITIONABLE=0 cannot
    # make the loss's spans and noise depend on the topology).
    jax.config.update("jax_threefry_partitionable", True)

    # 1. Optimizer; abstract train state with the shardings the initialiser would give it.
    _check_mesh_is_set(params)
    optimizer = make_optimizer(config, frozen=frozen)

    def init(params):
        return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))

    init_fn = jax.jit(init).lower(params).compile()
    abstract = jax.tree.map(
        lambda shape, sharding: jax.ShapeDtypeStruct(shape.shape, shape.dtype, sharding=sharding),
        jax.eval_shape(init, params),
        init_fn.output_shardings,
    )

    manager = checkpoints.open_manager(checkpoint_dir, max_to_keep=config.max_to_keep)
    try:
        # 2. Restore the latest checkpoint, or initialise.
        restored_from = manager.latest_step()
        if restored_from is None:
            state = init_fn(params)
        else:
            restored_params, rest = checkpoints.restore(
                manager,
                restored_from,
                abstract_params=abstract.params,
                abstract_train={"step": abstract.step, "opt_state": abstract.opt_state},
            )
            state = TrainState(rest["step"], restored_params, rest["opt_state"])
        start = int(state.step)

        # 3. The jitted step; the state is donated, so each step updates it in place.
        step_fn = jax.jit(
            functools.partial(train_step, loss_fn=loss_fn, optimizer=optimizer, post_update=post_update),
            donate_argnums=0,
        )

        # 4. The loop.
        watch = _NonFiniteWatch(config, checkpoint_dir, last_saved=restored_from)
        history: list[dict] = []
        for s in range(start, end):
            state, metrics = step_fn(state, batches(s), key=key)
            done = s + 1
            watch.push(done, metrics)
            save_now = done % config.checkpoint_every == 0 or done == end
            log_now = done % config.log_every == 0 or done == end
            if save_now or log_now:
                watch.flush()
            if save_now:
                _save(manager, state, done, watch)
            if log_now:
                values = {name: float(value) for name, value in jax.device_get(metrics).items()}
                history.append({"step": done, **values})
                if on_log is not None:
                    on_log(done, values)
        watch.flush()
        return TrainResult(state.params, int(state.step), restored_from, history)
    finally:
        # Orbax copies arrays to host inside save(), so donating them afterwards is safe;
        # the writes themselves run in the background until here.
        manager.wait_until_finished()
        manager.close()


def _check_mesh_is_set(params: Any) -> None:
    """Sharded params without a mesh set would get their optimizer state on one device."""
    sharded = [
        leaf for leaf in jax.tree.leaves(params)
        if isinstance(getattr(leaf, "sharding", None), jax.sharding.NamedSharding)
    ]
    if sharded and jax.sharding.get_abstract_mesh().empty:
        raise ValueError(
            f"params are sharded over {sharded[0].sharding.mesh} but no mesh is set, so the "
            "optimizer state would be initialised on one device: call train inside "
            "`with jax.set_mesh(mesh):` (a mesh with explicit axes)"
        )


class _NonFiniteWatch:
    """Counts non-finite steps in a row and raises `NonFiniteError` at `max_bad_steps`.

    A step's `finite` flag is read when the next step has been dispatched (`push`), so the
    host never waits on the step it just launched; `flush` reads the pending one at once.
    """

    def __init__(self, config: TrainConfig, checkpoint_dir: Any, *, last_saved: int | None):
        self.config = config
        self.checkpoint_dir = os.fspath(checkpoint_dir)
        self.last_saved = last_saved
        self.in_a_row = 0
        self.pending: tuple[int, dict] | None = None

    def push(self, step: int, metrics: dict) -> None:
        self.flush()
        self.pending = (step, metrics)

    def flush(self) -> None:
        if self.pending is None:
            return
        step, metrics = self.pending
        self.pending = None
        if bool(metrics["finite"]):
            self.in_a_row = 0
            return
        self.in_a_row += 1
        if self.in_a_row >= self.config.max_bad_steps:
            raise self.error(step, float(metrics["loss"]), float(metrics["grad_norm"]))

    def error(self, step: int, loss: float, grad_norm: float) -> NonFiniteError:
        n = self.in_a_row
        saved = "none written"
        if self.last_saved is not None:
            saved = f"step {self.last_saved} in {self.checkpoint_dir}"
        return NonFiniteError(
            f"training stopped at step {step}: the loss ({loss}) or the gradient norm "
            f"({grad_norm}) was not finite for {n} steps in a row (steps {step - n + 1} to {step}; "
            f"train.max_bad_steps = {self.config.max_bad_steps}). Those updates were skipped, so "
            f"the parameters are still those of step {step - n}. Last good checkpoint: {saved}.",
            fix=(
                "lower the learning rate (e.g. --set train.learning_rate="
                f"{self.config.learning_rate / 10:g}) and check the input data for extreme or "
                "missing values around those steps"
            ),
        )


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in floats], dtype=bool))


def _save(manager, state: TrainState, step: int, watch: _NonFiniteWatch) -> None:
    """Start writing `state` as `step`, unless its parameters are not finite."""
    if not bool(_all_finite(state.params)):
        raise NonFiniteError(
            f"the parameters at step {step} are not finite, so no checkpoint was written "
            f"(last good checkpoint: step {watch.last_saved} in {watch.checkpoint_dir})",
            fix=(
                "lower the learning rate (e.g. --set train.learning_rate="
                f"{watch.config.learning_rate / 10:g}) or the gradient clip (train.grad_clip)"
            ),
        )
    checkpoints.save(
        manager, step, params=state.params, train={"step": state.step, "opt_state": state.opt_state}
    )
    watch.last_saved = step
