"""The shared training loop: learning and schedule, resume after SIGKILL and in slices,
non-finite steps, checkpoint retention, and checkpoints on gs:// (GCS emulator).

The model is linear regression, `{"w": [4], "b": []}`, so every run takes a fraction of
a second; one test uses a 2-layer NNX MLP the way stages do (split params, merge in loss).
Run as a script (`python test_train.py DIR`), this file is the child process that the
SIGKILL test trains in and kills.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
import uuid

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from strates.core import checkpoints
from strates.core.errors import ConfigError, NonFiniteError
from strates.core.train import TrainConfig, make_optimizer, make_schedule, train

W_TRUE = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
B_TRUE = 0.7
CONFIG = TrainConfig(
    steps=20, batch_size=16, learning_rate=0.3, warmup_steps=3, checkpoint_every=5, log_every=5, max_to_keep=2
)
KEY = 1234  # the train key is jax.random.key(KEY); an int here so the child can rebuild it


def batches(step: int, *, nan_at: frozenset[int] = frozenset()) -> dict:
    """Batch for step `step` (0-based), a function of `step` alone; NaN inputs at `nan_at`."""
    rng = np.random.default_rng(step)
    x = rng.normal(size=(CONFIG.batch_size, 4)).astype(np.float32)
    y = (x @ W_TRUE + B_TRUE + 0.01 * rng.normal(size=CONFIG.batch_size)).astype(np.float32)
    if step in nan_at:
        x[0, 0] = np.nan
    return {"x": x, "y": y}


def loss_fn(params, batch, key):
    # Uses its key (target jitter), so resume tests also check the per-step keys.
    jitter = 1e-3 * jax.random.normal(key, batch["y"].shape)
    err = batch["x"] @ params["w"] + params["b"] - (batch["y"] + jitter)
    return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err))}


def init_params():
    return {"w": jnp.zeros(4, jnp.float32), "b": jnp.zeros((), jnp.float32)}


def initial_loss() -> float:
    return float(loss_fn(init_params(), batches(999), jax.random.key(0))[0])


def run(directory, *, config=CONFIG, nan_at=frozenset(), params=None, **kwargs):
    return train(
        loss_fn=loss_fn,
        params=init_params() if params is None else params,
        batches=lambda step: batches(step, nan_at=nan_at),
        config=config,
        checkpoint_dir=str(directory),
        key=jax.random.key(KEY),
        **kwargs,
    )


def assert_params_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Run A: 20 steps, uninterrupted, every checkpoint kept (steps 5, 10, 15, 20)."""
    directory = tmp_path_factory.mktemp("reference")
    result = run(directory, config=TrainConfig(**{**vars(CONFIG), "max_to_keep": 4}))
    return directory, result


def test_config_rejects_bad_values_and_shows_them():
    with pytest.raises(ConfigError, match=r"warmup_steps \(20\) must be below train.steps \(10\)"):
        TrainConfig(steps=10, warmup_steps=20)
    with pytest.raises(ConfigError, match=r"train.learning_rate = -0.1"):
        TrainConfig(learning_rate=-0.1)
    with pytest.raises(ConfigError, match=r"train.log_every = 0"):
        TrainConfig(log_every=0)


def test_schedule_warms_up_then_decays_to_min_ratio():
    config = TrainConfig(steps=100, learning_rate=1e-2, warmup_steps=10, min_lr_ratio=0.1)
    lr = np.asarray([make_schedule(config)(s) for s in range(101)], np.float64).tolist()
    assert lr[0] == 0.0 and lr[5] == pytest.approx(5e-3) and lr[10] == pytest.approx(1e-2)
    assert all(a < b for a, b in itertools.pairwise(lr[:11]))  # warm-up rises
    assert all(a > b for a, b in itertools.pairwise(lr[10:101]))  # cosine decays
    assert lr[100] == pytest.approx(1e-3)
    # the optimizer follows it: with a constant gradient Adam's direction is 1, so the
    # 6th update of w = 1 is -lr(5) * (1 + weight_decay * w), whatever the (clipped) size
    optimizer = make_optimizer(config)
    params = {"w": jnp.ones(3)}
    state = optimizer.init(params)
    for _ in range(6):
        updates, state = optimizer.update({"w": jnp.full(3, 100.0)}, state, params)
    np.testing.assert_allclose(optax.tree_utils.tree_get(updates, "w"), -lr[5] * (1 + config.weight_decay), rtol=1e-4)


def test_loss_goes_down_and_history_has_logged_steps(reference):
    directory, result = reference
    assert (result.step, result.restored_from) == (20, None)
    assert [h["step"] for h in result.history] == [5, 10, 15, 20]
    assert set(result.history[0]) == {"step", "loss", "grad_norm", "lr", "finite", "mae"}
    assert all(h["finite"] == 1.0 for h in result.history)
    assert result.history[-1]["loss"] < 0.05 * initial_loss()
    # logged lr is the rate of that step's update: step s uses schedule(s - 1)
    schedule = make_schedule(CONFIG)
    expected = np.asarray([schedule(s - 1) for s in (5, 10, 15, 20)], np.float64)
    assert [h["lr"] for h in result.history] == pytest.approx(expected.tolist())
    assert checkpoints.all_steps(directory) == [5, 10, 15, 20]
    assert_params_equal(checkpoints.restore_params(directory, init_params()), result.params)


def test_nnx_model_trains_through_split_params(tmp_path):
    from flax import nnx

    model = nnx.Sequential(nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(8, 1, rngs=nnx.Rngs(1)))
    graphdef, params = nnx.split(model, nnx.Param)

    def mlp_loss(params, batch, key):
        pred = nnx.merge(graphdef, params)(batch["x"])[:, 0]
        return jnp.mean((pred - batch["y"]) ** 2), {}

    logged = []
    config = TrainConfig(steps=12, learning_rate=0.05, warmup_steps=2, checkpoint_every=12, log_every=6)
    result = train(
        loss_fn=mlp_loss, params=params, batches=batches, config=config, checkpoint_dir=str(tmp_path),
        key=jax.random.key(0), on_log=lambda step, metrics: logged.append((step, metrics["loss"])),
    )
    assert [step for step, _ in logged] == [6, 12]
    assert logged == [(h["step"], h["loss"]) for h in result.history]
    assert result.history[-1]["loss"] < float(mlp_loss(params, batches(0), None)[0])
    restored = checkpoints.restore_params(tmp_path, nnx.eval_shape(lambda: nnx.split(model, nnx.Param)[1]))
    assert_params_equal(restored, result.params)


def test_resume_in_process_with_stop_after(tmp_path, reference):
    first = run(tmp_path, stop_after=12)
    assert (first.step, first.restored_from) == (12, None)
    assert [h["step"] for h in first.history] == [5, 10, 12]
    assert checkpoints.latest_step(tmp_path) == 12
    second = run(tmp_path)
    assert (second.step, second.restored_from) == (20, 12)
    assert [h["step"] for h in second.history] == [15, 20]
    assert_params_equal(second.params, reference[1].params)


def test_checkpoint_retention_keeps_max_to_keep(tmp_path):
    run(tmp_path, config=TrainConfig(**{**vars(CONFIG), "steps": 8, "checkpoint_every": 2}))
    assert checkpoints.all_steps(tmp_path) == [6, 8]
    assert sorted(os.listdir(tmp_path)) == ["6", "8"]


def test_sharded_params_and_optimizer_state_keep_their_sharding_through_resume(tmp_path, reference):
    mesh = jax.make_mesh((4,), ("fsdp",), axis_types=(AxisType.Explicit,), devices=jax.devices()[:4])

    def sharded_params():
        return jax.tree.map(
            lambda x, spec: jax.device_put(x, NamedSharding(mesh, spec)), init_params(), {"w": P("fsdp"), "b": P()}
        )

    with pytest.raises(ValueError, match="set_mesh"):
        run(tmp_path, params=sharded_params())
    with jax.set_mesh(mesh):
        run(tmp_path, params=sharded_params(), stop_after=12)
        result = run(tmp_path, params=sharded_params())
    assert result.restored_from == 12
    assert result.params["w"].sharding == NamedSharding(mesh, P("fsdp"))
    for x, y in zip(jax.tree.leaves(result.params), jax.tree.leaves(reference[1].params), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5)
    # Adam's moments were saved sharded like the params (restored as saved: no shardings given)
    abstract_opt = jax.eval_shape(make_optimizer(CONFIG).init, init_params())
    with checkpoints.open_manager(tmp_path, create=False) as manager:
        _, rest = checkpoints.restore(
            manager, 20, abstract_params=jax.eval_shape(init_params),
            abstract_train={"step": jax.ShapeDtypeStruct((), jnp.int32), "opt_state": abstract_opt},
        )
    assert optax.tree_utils.tree_get(rest["opt_state"], "mu")["w"].sharding.spec == P("fsdp")


def test_resume_after_sigkill(tmp_path, reference):
    directory, log_path = tmp_path / "ckpt", tmp_path / "child.log"
    command = [sys.executable, __file__, str(directory)]
    with open(log_path, "w") as log, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True) as child:
        assert child.stdout is not None  # stdout=PIPE
        try:
            ready, _, _ = select.select([child.stdout], [], [], 120)
            line = child.stdout.readline() if ready else ""
            assert line.strip() == "SAVED 10", f"child said {line!r}; its log: {log_path.read_text()[-2000:]}"
            os.kill(child.pid, signal.SIGKILL)  # mid-run: steps 11 and 12 are done in memory only
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    assert checkpoints.all_steps(directory) == [5, 10]
    resumed = run(directory)
    assert (resumed.step, resumed.restored_from) == (20, 10)
    assert_params_equal(resumed.params, reference[1].params)


def test_non_finite_steps_stop_training_and_keep_the_last_good_checkpoint(tmp_path, reference):
    # batches 10, 11, 12 hold NaN: steps 11, 12, 13 are bad; the third in a row stops training
    with pytest.raises(NonFiniteError, match="at step 13") as caught:
        run(tmp_path, nan_at=frozenset(range(10, 20)))
    error = caught.value
    assert error.exit_code == 6
    assert "steps 11 to 13" in str(error) and "nan" in str(error) and "step 10 in" in str(error)
    assert "train.learning_rate=" in str(error)
    assert checkpoints.all_steps(tmp_path) == [5, 10]
    restored = checkpoints.restore_params(tmp_path, init_params())
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored))
    before_nan = checkpoints.restore_params(reference[0], init_params(), step=10)
    assert_params_equal(restored, before_nan)


def test_a_transient_non_finite_step_is_skipped(tmp_path):
    nan_at = frozenset({6})  # step 7 only
    before = run(tmp_path, nan_at=nan_at, stop_after=6)
    during = run(tmp_path, nan_at=nan_at, stop_after=7)
    assert during.restored_from == 6 and during.history[-1]["finite"] == 0.0
    assert np.isnan(during.history[-1]["loss"])
    assert_params_equal(during.params, before.params)  # the update was not applied
    # nor did the optimizer advance: the latest update's rate is still step 6's
    assert during.history[-1]["lr"] == pytest.approx(before.history[-1]["lr"])
    after = run(tmp_path, nan_at=nan_at)
    assert (after.step, after.restored_from) == (20, 7)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(after.params))
    assert after.history[-1]["finite"] == 1.0 and after.history[-1]["loss"] < 0.05 * initial_loss()


@pytest.mark.gcs
def test_checkpoints_on_gcs(gcs_emulator, reference):
    directory = f"gs://{gcs_emulator.bucket}/ckpt-{uuid.uuid4().hex[:8]}"
    first = run(directory, stop_after=12)
    assert checkpoints.all_steps(directory) == [10, 12]  # step 5 deleted (max_to_keep=2)
    assert_params_equal(checkpoints.restore_params(directory, init_params()), first.params)
    resumed = run(directory)
    assert (resumed.step, resumed.restored_from) == (20, 12)
    assert_params_equal(resumed.params, reference[1].params)
    # a standalone final-params checkpoint
    final = f"{directory}-final"
    checkpoints.save_params(final, resumed.params)
    assert checkpoints.latest_step(final) == 0
    assert_params_equal(checkpoints.restore_params(final, init_params()), resumed.params)


def _child(directory: str) -> None:
    """Train like the reference run; once step 10 is on disk, say so and hang at step 12."""

    def hang_at_12(step):
        if step == 12:
            while checkpoints.latest_step(directory) != 10:
                time.sleep(0.02)
            print("SAVED 10", flush=True)
            time.sleep(600)
        return batches(step)

    train(
        loss_fn=loss_fn, params=init_params(), batches=hang_at_12, config=CONFIG,
        checkpoint_dir=directory, key=jax.random.key(KEY),
    )


if __name__ == "__main__":
    _child(sys.argv[1])


def test_frozen_leaves_are_untouched_and_post_update_moves_them(tmp_path):
    """An EMA target: frozen for the optimizer (no update, no weight decay), moved by
    post_update inside the step."""

    def with_target(params):
        return {**params, "target": {"w": jnp.full(4, 5.0), "b": jnp.zeros(())}}

    frozen = {"w": False, "b": False, "target": {"w": True, "b": True}}
    still = run(tmp_path / "a", params=with_target(init_params()), frozen=frozen)
    np.testing.assert_array_equal(np.asarray(still.params["target"]["w"]), np.full(4, 5.0, np.float32))

    def ema(params, step):
        tau = 0.5
        online = {"w": params["w"], "b": params["b"]}
        target = jax.tree.map(lambda t, o: tau * t + (1 - tau) * o, params["target"], online)
        return {**params, "target": target}

    moved = run(tmp_path / "b", params=with_target(init_params()), frozen=frozen, post_update=ema)
    # after 20 steps with tau 0.5 the target has all but forgotten its start and tracks w
    np.testing.assert_allclose(np.asarray(moved.params["target"]["w"]), np.asarray(moved.params["w"]), atol=0.2)
    online = ("w", "b")
    assert_params_equal({k: moved.params[k] for k in online}, {k: still.params[k] for k in online})


def test_the_loop_draws_partitionable_random_bits(tmp_path):
    """`train` turns on `jax_threefry_partitionable`: random bits then do not depend on the
    sharding, so a key gives the same numbers on one device and on 8."""
    before = jax.config.jax_threefry_partitionable
    try:
        jax.config.update("jax_threefry_partitionable", False)
        run(tmp_path / "ckpt", config=TrainConfig(steps=2, warmup_steps=1, checkpoint_every=2, log_every=1))
        assert jax.config.jax_threefry_partitionable
        devices = jax.devices()
        if len(devices) >= 2:
            mesh = jax.make_mesh((len(devices),), ("data",), axis_types=(AxisType.Explicit,))
            sharding = NamedSharding(mesh, P("data"))
            draw = jax.jit(lambda k: jax.random.normal(k, (8 * len(devices), 4)), out_shardings=sharding)
            np.testing.assert_array_equal(np.asarray(draw(jax.random.key(3))),
                                          np.asarray(jax.random.normal(jax.random.key(3), (8 * len(devices), 4))))
    finally:
        jax.config.update("jax_threefry_partitionable", before)
