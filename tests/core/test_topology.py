"""Topology names, mesh plans, logical rules, and real sharding on 8 simulated CPU devices."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from strates.core import topology as T
from strates.core.errors import ConfigError, TopologyMismatch


@pytest.mark.parametrize(
    ("name", "generation", "chips", "hosts", "per_host", "ici"),
    [
        ("v5p-32", "v5p", 16, 4, 4, (2, 2, 4)),
        ("v5p-8", "v5p", 4, 1, 4, (2, 2, 1)),
        ("v4-8", "v4", 4, 1, 4, (2, 2, 1)),
        ("v4-4096", "v4", 2048, 512, 4, (8, 16, 16)),
        ("v6e-64", "v6e", 64, 16, 4, (8, 8)),
        ("v6e-1", "v6e", 1, 1, 1, (1, 1)),
        ("v5e-8", "v5e", 8, 1, 8, (2, 4)),
        ("v5e-16", "v5e", 16, 4, 4, (4, 4)),
        ("v5litepod-4", "v5e", 4, 1, 4, (2, 2)),
        ("V6E-256", "v6e", 256, 64, 4, (16, 16)),
    ],
)
def test_tpu_names_give_chip_device_host_counts(name, generation, chips, hosts, per_host, ici):
    t = T.get_topology(name)
    assert (t.generation, t.chips, t.devices, t.hosts, t.devices_per_host, t.ici_shape) == (
        generation, chips, chips, hosts, per_host, ici)
    assert t.platform == "tpu"
    assert t.hbm_gib_per_device == {"v4": 32, "v5e": 16, "v5p": 95, "v6e": 32}[generation]


def test_tpu_plan_needs_no_devices_and_is_json():
    p = T.plan("v6e-64")
    assert p.shape == (8, 8, 1) and p.axes == ("data", "fsdp", "model")
    d = json.loads(json.dumps(p.to_dict()))
    assert (d["name"], d["devices"], d["hosts"], d["hbm_gib_per_device"]) == ("v6e-64", 64, 16, 32)
    assert d["rules"]["batch"] == ["data", "fsdp"] and d["rules"]["kv"] is None
    text = "\n".join(p.describe())
    assert "16 host(s)" in text and "data=8 fsdp=8 model=1" in text and "8x8" in text


def test_default_shapes():
    assert T.plan("v4-8").shape == (1, 4, 1)  # 4 devices: all fsdp
    assert T.plan("v5p-32").shape == (2, 8, 1)
    assert T.plan("cpu", devices=8).shape == (8, 1, 1)
    assert T.plan("cpu", devices=3).shape == (3, 1, 1)


@pytest.mark.parametrize(
    ("name", "must_contain"),
    [
        ("v6e-48", ["v6e-48", "1, 4, 8, 16, 32, 64, 128, 256", "v6e-32 or v6e-64"]),
        ("v5e-2", ["1, 4, 8", "v5e-1 or v5e-4"]),
        ("v4-4", ["8, 16, 32", "use v4-8"]),
        ("v5p-12", ["v5p-8 or v5p-16"]),
        ("v6e-512", ["use v6e-256"]),
        ("v7-8", ["valid forms", "v5e-N"]),
        ("tpu", ["valid forms"]),
        ("v6e-", ["valid forms"]),
    ],
)
def test_bad_names_and_sizes(name, must_contain):
    with pytest.raises(ConfigError) as e:
        T.get_topology(name)
    for s in must_contain:
        assert s in str(e.value)


def test_mesh_override_replaces_default_and_checks_product():
    assert T.parse_mesh_override("data=2, fsdp=4") == {"data": 2, "fsdp": 4}
    assert T.plan("cpu", devices=8, mesh="data=2,fsdp=4").shape == (2, 4, 1)
    assert T.plan("v6e-64", mesh={"model": 4, "data": -1}).shape == (16, 1, 4)
    with pytest.raises(ConfigError) as e:
        T.plan("v6e-64", mesh={"data": 2, "fsdp": 4})
    assert "8" in str(e.value) and "64" in str(e.value)
    for bad in ("data", "data=0", "data=x", "data=2,data=4"):
        with pytest.raises(ConfigError):
            T.parse_mesh_override(bad)
    with pytest.raises(ConfigError, match="unknown mesh axis"):
        T.plan("cpu", devices=8, mesh={"tensor": 8})


def test_logical_to_mesh_axes():
    from jax.sharding import PartitionSpec as P

    assert T.logical_to_mesh_axes(("embed", "mlp")) == P("fsdp", "model")
    assert T.logical_to_mesh_axes(("vocab", "embed")) == P("model", "fsdp")
    assert T.logical_to_mesh_axes((None, "length", "kv")) == P(None, None, None)
    # batch comes first in the table, so it keeps fsdp and embed is left unsharded
    assert T.logical_to_mesh_axes(("batch", "length", "embed")) == P(("data", "fsdp"), None, None)
    assert T.logical_to_mesh_axes(("embed", "batch")) == P(None, ("data", "fsdp"))
    # a lower-priority dim keeps the axes nobody took
    rules = {"y": "fsdp", "x": ("data", "fsdp")}
    assert T.logical_to_mesh_axes(("x", "y"), rules) == P("data", "fsdp")
    assert T.logical_to_mesh_axes(("state", "state")) == P(None, None)  # unsharded: allowed


def test_logical_to_mesh_axes_errors():
    with pytest.raises(ConfigError, match="unknown logical axis 'time'"):
        T.logical_to_mesh_axes(("batch", "time"))
    with pytest.raises(ConfigError, match="appears twice"):
        T.logical_to_mesh_axes(("embed", "embed"))
    with pytest.raises(ConfigError, match="both map to mesh axis 'fsdp'"):
        T.logical_to_mesh_axes(("batch", "embed"), strict=True)
    with pytest.raises(ConfigError, match="no mesh axis"):
        T.MeshPlan(T.get_topology("cpu", devices=8), (8, 1, 1), rules=(("batch", "tensor"),))


def test_import_does_not_import_jax():
    code = "import sys, strates.core.topology as t; t.plan('v6e-64'); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- real devices: 8 simulated CPU devices (tests/conftest.py sets XLA_FLAGS) ----

@pytest.fixture(scope="module")
def jax8():
    import jax

    if len(jax.devices()) != 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8")
    return jax


def test_auto_detects_8_cpu_devices(jax8):
    p = T.plan("auto")
    assert (p.topology.platform, p.topology.devices, p.topology.name) == ("cpu", 8, "cpu")
    assert p.shape == (8, 1, 1)


def _block_index(pos, shape, mesh_axes_of_dim):
    """Row-major block number of a device along the mesh axes that shard one dim."""
    idx = 0
    for ax in mesh_axes_of_dim:
        i = T.MESH_AXES.index(ax)
        idx = idx * shape[i] + pos[i]
    return idx


@pytest.mark.parametrize("shape", [(8, 1, 1), (2, 4, 1), (4, 2, 1)])
@pytest.mark.parametrize(
    ("rules", "row_axes", "col_axes"),
    [(None, ("data", "fsdp"), ()), ({"batch": "data", "embed": "fsdp"}, ("data",), ("fsdp",))],
)
def test_shard_places_the_right_slices(jax8, shape, rules, row_axes, col_axes):
    sizes = dict(zip(T.MESH_AXES, shape, strict=True))
    p = T.plan("cpu", mesh=sizes)
    mesh = T.build_mesh(p)
    assert dict(mesh.shape) == sizes
    x = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
    xs = T.shard(x, mesh, ("batch", "embed"), rules)
    n_rows = int(np.prod([sizes[a] for a in row_axes]))
    n_cols = int(np.prod([sizes[a] for a in col_axes]))
    rows, cols = 16 // n_rows, 8 // n_cols
    by_device = {s.device: np.asarray(s.data) for s in xs.addressable_shards}
    assert len(by_device) == 8
    for pos in np.ndindex(*shape):
        got = by_device[mesh.devices[pos]]
        r = _block_index(pos, shape, row_axes)
        c = _block_index(pos, shape, col_axes)
        assert got.shape == (rows, cols)
        np.testing.assert_array_equal(got, x[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols])
    np.testing.assert_array_equal(np.asarray(xs), x)
    # the same placement from a jax array (device_put path)
    np.testing.assert_array_equal(np.asarray(T.shard(jax8.numpy.asarray(x), mesh,
                                                     ("batch", "embed"), rules)), x)


@pytest.mark.parametrize("shape", [(8, 1, 1), (2, 4, 1)])
def test_jit_over_sharded_array_matches_unsharded(jax8, shape):
    mesh = T.build_mesh(T.plan("cpu", mesh=dict(zip(T.MESH_AXES, shape, strict=True))))
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    xs = T.shard(x, mesh, ("batch", "embed"), {"batch": "data", "embed": "fsdp"})
    f = jax8.jit(lambda a: (a.sum(axis=0), (a * a).mean()))
    col_sum, msq = f(xs)
    ref_sum, ref_msq = f(x)
    np.testing.assert_allclose(np.asarray(col_sum), np.asarray(ref_sum), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(float(msq), float(ref_msq), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(col_sum), x.sum(axis=0), rtol=1e-5, atol=1e-5)


def test_mesh_axes_are_explicit(jax8):
    from jax.sharding import AxisType

    mesh = T.build_mesh(T.plan("cpu"))
    assert mesh.axis_types == (AxisType.Explicit,) * 3


def test_cpu_plan_may_use_fewer_simulated_devices(jax8):
    mesh = T.build_mesh(T.plan("cpu", devices=4, mesh="data=2,fsdp=2"))
    assert mesh.devices.size == 4


def test_tpu_plan_on_cpu_devices_is_a_topology_mismatch(jax8):
    with pytest.raises(TopologyMismatch) as e:
        T.build_mesh(T.plan("v6e-64"))
    msg = str(e.value)
    assert "v6e-64" in msg and "8 cpu" in msg and "16 host" in msg and "--dry-run" in msg
    assert e.value.exit_code == 4
    with pytest.raises(TopologyMismatch, match="sees 4 cpu"):
        T.build_mesh(T.plan("cpu", devices=8), devices=jax8.devices()[:4])


def test_named_sharding_rejects_axes_missing_from_mesh(jax8):
    mesh = jax8.make_mesh((8,), ("data",), axis_types=(jax8.sharding.AxisType.Explicit,))
    with pytest.raises(ConfigError, match="lacks"):
        T.named_sharding(mesh, ("embed",))
    spec = T.named_sharding(mesh, ("batch",), {"batch": "data"}).spec
    assert spec == jax8.sharding.PartitionSpec("data")
