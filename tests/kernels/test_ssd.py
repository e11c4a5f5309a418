"""Every SSD form against the reference recurrence: outputs, final state and gradients.

The same `TestForms` class runs the Pallas kernel natively on TPU/GPU and in interpret mode on
CPU (`interpret=None`). Shapes are tiny: interpret-mode Pallas emulates the kernel op by op.
Tolerances are relative to the largest reference magnitude: fp32 1e-4, bf16 2e-2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kernels.ssd import IMPLS, resolve_impl, ssd, ssd_chunked, ssd_pallas, ssd_reference, ssd_step
from kernels.ssd.chunked import resolve_schedule

TOL = {"float32": 1e-4, "bfloat16": 2e-2}

# name: (batch, L, H, P, G, N, chunk). L % chunk != 0, G < H and N != P in each; B = 1 and 2.
SHAPES = {
    "b1-g1": (1, 13, 2, 4, 1, 3, 4),
    "b2-g2": (2, 14, 4, 8, 2, 16, 8),
}

FORMS = {
    "chunked-sequential": lambda *a, chunk, **k: ssd_chunked(*a, chunk=chunk, schedule="sequential", **k),
    "chunked-parallel": lambda *a, chunk, **k: ssd_chunked(*a, chunk=chunk, schedule="parallel", **k),
    "pallas": lambda *a, chunk, **k: ssd_pallas(*a, chunk=chunk, **k),  # interpret mode on CPU
    "auto": lambda *a, chunk, **k: ssd(*a, chunk=chunk, impl="auto", **k),
}


def make_inputs(shape, dtype, *, seed=0, with_state=False):
    """(x, dt, A, B, C, D, initial_state) at a (batch, L, H, P, G, N) shape; x, dt, B, C in `dtype`.

    Drawn with NumPy: no per-shape XLA compiles for the random numbers.
    """
    b, length, h, p, g, n = shape
    rng = np.random.default_rng(seed)
    normal = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
    x = jnp.asarray(normal(b, length, h, p), dtype)
    dt = jnp.asarray(np.logaddexp(0.0, normal(b, length, h) - 1.0), dtype)  # softplus
    A = jnp.asarray(-np.exp(rng.uniform(-1.0, 1.0, h)), jnp.float32)
    B = jnp.asarray(normal(b, length, g, n), dtype)
    C = jnp.asarray(normal(b, length, g, n), dtype)
    D = jnp.asarray(normal(h))
    s0 = jnp.asarray(normal(b, h, p, n)) if with_state else None
    return x, dt, A, B, C, D, s0


def run(form, inputs, **kwargs):
    """(y, final, grads w.r.t. x, dt, A, B, C, D[, initial_state]) through `form`, jitted once.

    The loss is a fixed random projection of y plus one of the final state.
    """
    x, dt, A, B, C, D, s0 = inputs
    rng = np.random.default_rng(11)
    wy = jnp.asarray(rng.standard_normal(x.shape, np.float32))
    ws = jnp.asarray(rng.standard_normal((x.shape[0], x.shape[2], x.shape[3], B.shape[-1]), np.float32))
    args = (x, dt, A, B, C, D) + (() if s0 is None else (s0,))

    def loss(*a):
        y, final = form(*a[:6], initial_state=None if s0 is None else a[6], **kwargs)
        return jnp.sum(y.astype(jnp.float32) * wy) + jnp.sum(final * ws), (y, final)

    (_, (y, final)), grads = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(len(args))), has_aux=True))(*args)
    return y, final, grads


@functools.cache
def reference_run(shape_name, dtype_name, with_state):
    shape = SHAPES[shape_name][:6]
    return run(ssd_reference, make_inputs(shape, jnp.dtype(dtype_name), with_state=with_state))


def assert_close(got, want, tol, what):
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(float(np.abs(want).max()), 1e-6)
    err = float(np.abs(got - want).max()) / scale
    assert err <= tol, f"{what}: max relative error {err:.2e} > {tol:.0e}"


def assert_matches(got, want, tol):
    y, final, grads = got
    y_ref, final_ref, grads_ref = want
    assert y.dtype == y_ref.dtype and final.dtype == jnp.float32
    assert_close(y, y_ref, tol, "y")
    assert_close(final, final_ref, tol, "final state")
    names = ("x", "dt", "A", "B", "C", "D", "initial_state")
    for name, g, g_ref in zip(names[: len(grads_ref)], grads, grads_ref, strict=True):
        assert_close(g, g_ref, tol, f"d loss / d {name}")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("form", list(FORMS))
class TestForms:
    """Each form, shape and dtype against the reference: forward, final state, all gradients."""

    def test_matches_reference(self, form, shape_name, dtype):
        *shape, chunk = SHAPES[shape_name]
        got = run(FORMS[form], make_inputs(tuple(shape), jnp.dtype(dtype)), chunk=chunk)
        assert_matches(got, reference_run(shape_name, dtype, False), TOL[dtype])


@pytest.mark.parametrize("form", list(FORMS))
def test_initial_state_matches_reference(form):
    *shape, chunk = SHAPES["b2-g2"]
    got = run(FORMS[form], make_inputs(tuple(shape), jnp.float32, with_state=True), chunk=chunk)
    assert_matches(got, reference_run("b2-g2", "float32", True), TOL["float32"])


@pytest.mark.parametrize("chunk", [1, 16], ids=["chunk1", "chunk-gt-L"])
@pytest.mark.parametrize("form", ["chunked-sequential", "chunked-parallel", "pallas"])
def test_chunk_edge_cases(form, chunk):
    shape = SHAPES["b1-g1"][:6]  # L = 13
    got = run(FORMS[form], make_inputs(shape, jnp.float32), chunk=chunk)
    assert_matches(got, reference_run("b1-g1", "float32", False), TOL["float32"])


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "initial-state"])
@pytest.mark.parametrize("form", ["chunked-sequential", "chunked-parallel", "pallas"])
def test_explicitly_sharded_matches_reference(form, with_state):
    """Under an explicit mesh (batch on `data`, heads on `model`) each form runs per batch shard."""
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
    shape = (4, 9, 2, 4, 1, 3)
    inputs = make_inputs(shape, jnp.float32, with_state=with_state)
    want = run(ssd_reference, inputs)
    P = jax.sharding.PartitionSpec
    with jax.set_mesh(mesh):
        specs = (P("data", None, "model"), P("data"), P(), P("data"), P("data"), P(), P("data"))
        sharded = [None if t is None else jax.device_put(t, jax.NamedSharding(mesh, spec))
                   for t, spec in zip(inputs, specs, strict=True)]
        got = run(FORMS[form], tuple(sharded), chunk=4)
    assert_matches(got, want, TOL["float32"])


@pytest.mark.parametrize("steps", [1, 5])
def test_prefill_then_step_equals_full_scan(steps):
    """Chunked prefill of L - k steps, then k `ssd_step`s from its final state == one full scan."""
    shape = (2, 21, 4, 8, 2, 6)
    x, dt, A, B, C, D, _ = make_inputs(shape, jnp.float32, seed=3)
    y_ref, final_ref = jax.jit(ssd_reference)(x, dt, A, B, C, D)
    split = shape[1] - steps
    prefill = jax.jit(functools.partial(ssd_chunked, chunk=8))
    y_pre, state = prefill(x[:, :split], dt[:, :split], A, B[:, :split], C[:, :split], D)
    ys = [y_pre]
    step = jax.jit(ssd_step)
    for t in range(split, shape[1]):
        y_t, state = step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D)
        ys.append(y_t[:, None])
    assert_close(jnp.concatenate(ys, axis=1), y_ref, 1e-4, "prefill + steps vs full scan")
    assert_close(state, final_ref, 1e-4, "state after prefill + steps")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_step_is_one_reference_step(dtype):
    shape = (2, 1, 4, 8, 2, 6)
    x, dt, A, B, C, D, s0 = make_inputs(shape, jnp.dtype(dtype), with_state=True)
    y_ref, s_ref = jax.jit(ssd_reference)(x, dt, A, B, C, D, initial_state=s0)
    step = jax.jit(ssd_step)
    y, s = step(s0, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], D)
    assert y.dtype == x.dtype and s.dtype == jnp.float32
    assert_close(y, y_ref[:, 0], TOL[dtype], "y_t")
    assert_close(s, s_ref, TOL[dtype], "new state")
    y_no_d, _ = step(s0, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0])
    assert_close(y_no_d, y_ref[:, 0] - x[:, 0].astype(jnp.float32) * D[:, None], TOL[dtype], "y_t without D")


def test_step_rejects_mismatched_shapes():
    x, dt, A, B, C, D, s0 = make_inputs((2, 1, 4, 8, 2, 6), jnp.float32, with_state=True)
    assert s0 is not None
    with pytest.raises(ValueError, match="ssd_step shapes"):
        ssd_step(s0[:, :2], x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], D)


@pytest.mark.parametrize("impl", ["xla", "pallas", "reference"])
def test_dispatch_named_impls_match_reference(impl):
    x, dt, A, B, C, D, _ = make_inputs((1, 9, 2, 4, 1, 3), jnp.float32)
    y_ref, final_ref = ssd_reference(x, dt, A, B, C, D)
    y, final = ssd(x, dt, A, B, C, D, chunk=4, impl=impl)
    assert_close(y, y_ref, 1e-4, f"{impl} y")
    assert_close(final, final_ref, 1e-4, f"{impl} final state")


@pytest.mark.parametrize(("backend", "expected"), [("tpu", "pallas"), ("gpu", "pallas"), ("cpu", "xla")])
def test_auto_rule(backend, expected):
    assert resolve_impl("auto", backend=backend) == expected
    assert resolve_impl("reference", backend=backend) == "reference"  # a named impl is taken as is


def test_auto_on_this_backend():
    expected = "xla" if jax.default_backend() == "cpu" else "pallas"
    assert resolve_impl() == expected


def test_bad_impl_lists_valid_ones():
    x, dt, A, B, C, D, _ = make_inputs((1, 4, 2, 4, 1, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"'triton'.*auto, xla, pallas, reference"):
        ssd(x, dt, A, B, C, D, impl="triton")
    assert IMPLS == ("auto", "xla", "pallas", "reference")


def test_schedule_rule_and_bad_schedule():
    assert resolve_schedule("auto", backend="cpu") == "sequential"
    assert resolve_schedule("auto", backend="tpu") == "parallel"
    with pytest.raises(ValueError, match="unknown chunk schedule 'fast'"):
        resolve_schedule("fast")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "dt": a["dt"][:, :, :1]}, "dt has shape"),
        (lambda a: {**a, "A": a["A"][:1]}, "A has shape"),
        (lambda a: {**a, "C": a["C"][..., :2]}, "B and C must both be"),
        (lambda a: {**a, "D": a["D"][:1]}, "D has shape"),
        (lambda a: {**a, "initial_state": jnp.zeros((1, 2, 4, 2))}, "initial_state has shape"),
        (lambda a: {**a, "chunk": 0}, "chunk must be a positive int"),
    ],
)
def test_bad_shapes_are_rejected(change, message):
    x, dt, A, B, C, D, _ = make_inputs((1, 4, 2, 4, 1, 3), jnp.float32)
    kwargs = change({"x": x, "dt": dt, "A": A, "B": B, "C": C, "D": D, "initial_state": None, "chunk": 2})
    with pytest.raises(ValueError, match=message):
        ssd_chunked(**kwargs)


def test_groups_must_divide_heads():
    x, dt, A, _, _, D, _ = make_inputs((1, 4, 3, 4, 1, 3), jnp.float32)
    B = jnp.ones((1, 4, 2, 3))
    with pytest.raises(ValueError, match="multiple of groups"):
        ssd_chunked(x, dt, A, B, B, D)


def _lower_for(platform: str, device_kind: str):
    """Lower `ssd_pallas` natively for a device that is not here (abstract mesh); None if unsupported."""
    AbstractDevice = getattr(jax.sharding, "AbstractDevice", None)
    if AbstractDevice is None or not hasattr(jax.sharding, "use_abstract_mesh"):
        pytest.skip("this JAX has no abstract devices to lower for")
    lowering_platform = {"gpu": "cuda"}.get(platform, platform)
    device = AbstractDevice(device_kind=device_kind, num_cores=1, platform=platform)
    mesh = jax.sharding.AbstractMesh((1,), ("x",), (jax.sharding.AxisType.Explicit,), abstract_device=device)
    b, length, h, p, g, n = 1, 40, 2, 16, 1, 16
    specs = [((b, length, h, p), jnp.float32), ((b, length, h), jnp.float32), ((h,), jnp.float32),
             ((b, length, g, n), jnp.float32), ((b, length, g, n), jnp.float32), ((h,), jnp.float32)]
    args = [jax.ShapeDtypeStruct(s, d) for s, d in specs]
    fn = jax.jit(lambda *a: ssd_pallas(*a, chunk=8, interpret=False))
    with jax.sharding.use_abstract_mesh(mesh):
        return fn.trace(*args).lower(lowering_platforms=(lowering_platform,)).as_text()


@pytest.mark.filterwarnings("ignore:The Pallas Triton backend is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("platform", "device_kind"), [("tpu", "TPU v5 lite"), ("gpu", "NVIDIA H100 80GB HBM3")])
def test_pallas_kernel_lowers_natively(platform, device_kind):
    """The kernel body uses only primitives Mosaic (TPU) and Triton (GPU) lower; no device needed."""
    text = _lower_for(platform, device_kind)
    assert "ssd_chunked_scan" in text or "tpu_custom_call" in text or "triton" in text.lower()
