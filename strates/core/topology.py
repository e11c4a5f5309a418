"""Named device topologies, the mesh plan for each, and logical-axis sharding rules.

`--topology` takes `cpu`, `auto` (detect from `jax.devices()`), or a TPU slice name
`v4-N`, `v5e-N` (alias `v5litepod-N`), `v5p-N`, `v6e-N`. A name becomes a `Topology`
(chips, devices, hosts), a `MeshPlan` (mesh axes `data`, `fsdp`, `model` and their sizes,
plus the logical rules), and, only where the devices are present, a `jax.sharding.Mesh`.
Model code names *logical* axes (`batch`, `embed`, ...); one table (`DEFAULT_RULES`) maps
them onto mesh axes, so no layer names a mesh axis (the maxtext pattern).

TPU generations. JAX sees one device per chip (v4/v5p run their two TensorCores as one
megacore); a host is one TPU VM, i.e. one JAX process. HBM is as the docs state it (GB for
v5e/v6e, GiB for v4/v5p); `hbm_gib_per_device` records the number.

| gen | suffix N    | sizes N         | chips per host        | HBM/chip | bf16/chip | ICI      |
| --- | ----------- | --------------- | --------------------- | -------- | --------- | -------- |
| v4  | TensorCores | 8, 16, .. 4096  | 4                     | 32 GiB   | 275 TF/s  | 3D       |
| v5e | chips       | 1, 4, 8, .. 256 | all if <= 8, else 4   | 16 GB    | 197 TF/s  | 2D torus |
| v5p | TensorCores | 8, 16, .. 8192  | 4                     | 95 GiB   | 459 TF/s  | 3D torus |
| v6e | chips       | 1, 4, 8, .. 256 | all if <= 8, else 4   | 32 GB    | 918 TF/s  | 2D torus |

Physical slice shapes (chips): v5e/v6e 1x1, 2x2, 2x4, 4x4, 4x8, 8x8, 8x16, 16x16;
v4/v5p 2x2x1 (4 chips), 2x2x2, 2x2x4, 2x4x4, 4x4x4, ... 16x16x16 (4096 chips).
Sources: cloud.google.com/tpu/docs/{v4,v5e,v5p,v6e} (chip specs, 2D/3D interconnect,
v5p-32 = 16 chips, v5p 2x2x1 = 1 host / 2x2x2 = 2 hosts) and maxtext
`accelerator_to_spec_map.py` (slice shapes, 2x2x1 chips per host for multi-host v5e/v6e).
Only powers of two are accepted for v4/v5p; real pods also offer other shapes.

JAX imports stay inside functions: the CLI imports this module and must start instantly.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strates.core.errors import ConfigError, TopologyMismatch

if TYPE_CHECKING:  # pragma: no cover
    import jax

MESH_AXES: tuple[str, ...] = ("data", "fsdp", "model")
MeshAxes = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]

# Logical axis -> mesh axis (or axes, or None = replicated). Order is priority: when two
# dims of one array would claim the same mesh axis, the rule listed first keeps it (so an
# activation [B, T, D] gets batch over data+fsdp and an unsharded embed, while a weight
# [D, F] gets embed over fsdp). Glossary: batch B, length T, embed D, mlp F, heads H,
# kv (per-head dim), vocab V, state N (SSM state), codes K (codebook entries).
DEFAULT_RULES: Rules = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("vocab", "model"),
    ("length", None),
    ("state", None),
    ("codes", None),
)


@dataclass(frozen=True)
class Generation:
    """Facts about one TPU generation (see the module docstring for sources)."""

    name: str
    cores_per_chip: int  # what the name suffix counts per chip: 2 for v4/v5p, 1 for v5e/v6e
    sizes: tuple[int, ...]  # valid name suffixes
    single_host_max_chips: int  # slices up to this many chips are one host
    hbm_gib: float
    peak_bf16_tflops: float
    ici: str
    device_kinds: tuple[str, ...]  # jax `device_kind` strings


_2D = {1: (1, 1), 4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8), 128: (8, 16),
       256: (16, 16)}
_3D = {4: (2, 2, 1), 8: (2, 2, 2), 16: (2, 2, 4), 32: (2, 4, 4), 64: (4, 4, 4), 128: (4, 4, 8),
       256: (4, 8, 8), 512: (8, 8, 8), 1024: (8, 8, 16), 2048: (8, 16, 16), 4096: (16, 16, 16)}
_CHIPS_PER_HOST = 4  # multi-host slices of every generation here: a 2x2 block of chips per VM
_POW2 = tuple(2**k for k in range(3, 14))  # 8 .. 8192

GENERATIONS: dict[str, Generation] = {
    "v4": Generation("v4", 2, tuple(n for n in _POW2 if n <= 4096), 4, 32, 275, "3D",
                     ("TPU v4",)),
    "v5e": Generation("v5e", 1, tuple(_2D), 8, 16, 197, "2D torus", ("TPU v5 lite", "TPU v5e")),
    "v5p": Generation("v5p", 2, _POW2, 4, 95, 459, "3D torus", ("TPU v5p", "TPU v5")),
    "v6e": Generation("v6e", 1, tuple(_2D), 8, 32, 918, "2D torus", ("TPU v6 lite", "TPU v6e")),
}
_ALIASES = {"v5litepod": "v5e"}
_NAME_RE = re.compile(r"^(v4|v5e|v5litepod|v5p|v6e)-(\d+)$")
VALID_FORMS = "cpu, auto, v4-N, v5e-N (alias v5litepod-N), v5p-N, v6e-N"


@dataclass(frozen=True)
class Topology:
    """A device layout: how many chips, JAX devices and hosts (JAX processes)."""

    name: str
    generation: str  # 'v4' | 'v5e' | 'v5p' | 'v6e' | 'tpu' (other TPU) | 'cpu' | 'gpu'
    chips: int
    devices: int
    hosts: int
    devices_per_host: int
    hbm_gib_per_device: float | None
    platform: str  # 'tpu' | 'cpu' | 'gpu'
    peak_bf16_tflops_per_device: float | None = None
    ici_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.devices < 1 or self.hosts < 1 or self.devices != self.hosts * self.devices_per_host:
            raise ConfigError(
                f"topology {self.name}: {self.devices} devices do not split into {self.hosts} "
                f"host(s) x {self.devices_per_host} device(s)", field="topology")

    def summary(self) -> str:
        """E.g. '64 TPU v6e devices on 16 hosts'."""
        kind = f"TPU {self.generation}" if self.platform == "tpu" else self.platform
        return f"{self.devices} {kind} device(s) on {self.hosts} host(s)"


def _tpu_topology(gen: Generation, chips: int, name: str, hosts: int | None = None) -> Topology:
    if hosts is None:
        hosts = 1 if chips <= gen.single_host_max_chips else chips // _CHIPS_PER_HOST
    shape = (_2D if gen.ici.startswith("2D") else _3D).get(chips)
    return Topology(name, gen.name, chips, chips, hosts, chips // hosts, gen.hbm_gib, "tpu",
                    gen.peak_bf16_tflops, shape)


def _nearest(sizes: Sequence[int], n: int) -> list[int]:
    below = [s for s in sizes if s < n]
    above = [s for s in sizes if s > n]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def get_topology(name: str, *, devices: int | None = None) -> Topology:
    """Resolve a `--topology` name. TPU names need no devices; `cpu`/`auto` look (lazily)."""
    key = name.strip().lower()
    if key == "cpu":
        if devices is None:
            import jax

            devices = len(jax.devices("cpu"))
        n = devices
        if n < 1:
            raise ConfigError(f"cpu topology needs at least 1 device, got {n}", field="topology")
        return Topology("cpu", "cpu", n, n, 1, n, None, "cpu")
    if key == "auto":
        return _detect(devices)
    m = _NAME_RE.match(key)
    if not m:
        raise ConfigError(f"unknown topology {name!r}; valid forms: {VALID_FORMS}",
                          fix="use e.g. --topology cpu, auto, v5e-8 or v6e-64", field="topology")
    gen = GENERATIONS[_ALIASES.get(m.group(1), m.group(1))]
    size = int(m.group(2))
    if size not in gen.sizes:
        near = " or ".join(f"{gen.name}-{s}" for s in _nearest(gen.sizes, size))
        unit = "TensorCores, 2 per chip" if gen.cores_per_chip == 2 else "chips"
        raise ConfigError(
            f"{name} is not a {gen.name} slice size; valid ({unit}): "
            f"{', '.join(map(str, gen.sizes))}", fix=f"use {near}", field="topology")
    topo = _tpu_topology(gen, size // gen.cores_per_chip, f"{gen.name}-{size}")
    if devices is not None and devices != topo.devices:
        raise ConfigError(f"topology {topo.name} has {topo.devices} devices, not {devices}",
                          fix="drop the device count or pick the slice that has it",
                          field="topology")
    return topo


def generation_of(device_kind: str) -> Generation | None:
    """The generation a jax `device_kind` ('TPU v6 lite', 'TPU v5', ...) names, if known."""
    kind = device_kind.strip().lower()
    for gen in GENERATIONS.values():
        if kind in (k.lower() for k in gen.device_kinds):
            return gen
    return None


def _detect(expected: int | None) -> Topology:
    import jax

    devs = jax.devices()
    n, platform, hosts = len(devs), devs[0].platform, jax.process_count()
    if expected is not None and expected != n:
        raise ConfigError(f"--topology auto found {n} {platform} device(s), not {expected}",
                          field="topology")
    hosts = hosts if n % hosts == 0 else 1
    gen = generation_of(devs[0].device_kind) if platform == "tpu" else None
    if gen is not None:
        return _tpu_topology(gen, n, f"{gen.name}-{n * gen.cores_per_chip}", hosts=hosts)
    hbm = None
    if platform != "cpu":
        with contextlib.suppress(Exception):  # GPUs and unknown TPUs report their memory limit; optional per backend
            hbm = round(devs[0].memory_stats()["bytes_limit"] / 2**30, 1)
    name, generation = ("cpu", "cpu") if platform == "cpu" else (f"{platform}-{n}", platform)
    return Topology(name, generation, n, n, hosts, n // hosts, hbm, platform)


@dataclass(frozen=True)
class MeshPlan:
    """A topology, the mesh over its devices (`axes` x `shape`) and the logical rules."""

    topology: Topology
    shape: tuple[int, ...]
    axes: tuple[str, ...] = MESH_AXES
    rules: Rules = field(default=DEFAULT_RULES)

    def __post_init__(self):
        if len(self.shape) != len(self.axes):
            raise ConfigError(f"mesh shape {self.shape} does not match axes {self.axes}",
                              field="mesh")
        if math.prod(self.shape) != self.topology.devices:
            raise ConfigError(
                f"mesh {self.mesh_str()} has {math.prod(self.shape)} devices but topology "
                f"{self.topology.name} has {self.topology.devices}",
                fix="make the axis sizes multiply to the device count", field="mesh")
        object.__setattr__(self, "rules", _normalize_rules(self.rules))
        for logical, mesh_axes in self.rules:
            for ax in _as_tuple(mesh_axes):
                if ax not in self.axes:
                    raise ConfigError(f"rule {logical} -> {ax}: no mesh axis {ax!r} in "
                                      f"{self.axes}", field="mesh")

    @property
    def axis_sizes(self) -> dict[str, int]:
        return dict(zip(self.axes, self.shape, strict=True))

    def mesh_str(self) -> str:
        return " ".join(f"{a}={s}" for a, s in zip(self.axes, self.shape, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the topology's fields, then axes, shape and rules."""
        out: dict[str, Any] = dict(vars(self.topology))
        out["ici_shape"] = list(out["ici_shape"]) if out["ici_shape"] else None
        out.update(axes=list(self.axes), shape=list(self.shape),
                   rules={k: list(v) if isinstance(v, tuple) else v for k, v in self.rules})
        return out

    def describe(self) -> list[str]:
        """Human lines for `--dry-run` and logs."""
        t = self.topology
        lines = [f"topology  {t.name}: {t.chips} chip(s), {t.summary()}, "
                 f"{t.devices_per_host} per host"]
        if t.ici_shape:
            gen = GENERATIONS.get(t.generation)
            lines.append(f"ici       {'x'.join(map(str, t.ici_shape))} ({gen.ici if gen else '?'})")
        if t.hbm_gib_per_device is not None:
            lines.append(f"memory    {t.hbm_gib_per_device:g} GiB HBM per device, "
                         f"{t.hbm_gib_per_device * t.devices:g} GiB in all")
        if t.peak_bf16_tflops_per_device is not None:
            lines.append(f"peak      {t.peak_bf16_tflops_per_device:g} bf16 TFLOP/s per device")
        lines.append(f"mesh      {self.mesh_str()}")
        lines.append("rules     " + ", ".join(f"{k}->{_fmt_axes(v)}" for k, v in self.rules))
        return lines


def _fmt_axes(v: MeshAxes) -> str:
    return "-" if v is None else (v if isinstance(v, str) else "+".join(v))


def _as_tuple(v: MeshAxes) -> tuple[str, ...]:
    return () if v is None else ((v,) if isinstance(v, str) else tuple(v))


def _normalize_rules(rules: Mapping[str, MeshAxes] | Sequence[tuple[str, MeshAxes]]) -> Rules:
    items = rules.items() if isinstance(rules, Mapping) else rules
    out = []
    for logical, mesh_axes in items:
        ax = _as_tuple(mesh_axes)
        out.append((logical, None if not ax else (ax[0] if len(ax) == 1 else ax)))
    return tuple(out)


def parse_mesh_override(text: str) -> dict[str, int]:
    """'data=2,fsdp=4' -> {'data': 2, 'fsdp': 4}. One axis may be -1 (the rest)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = part.partition("=")
        key, val = key.strip(), val.strip()
        size = int(val) if re.fullmatch(r"-?\d+", val) else 0
        if not sep or not key or size == 0 or size < -1:
            raise ConfigError(f"bad mesh override {part!r} in {text!r}",
                              fix="write axis=size pairs, e.g. data=2,fsdp=4", field="mesh")
        if key in out:
            raise ConfigError(f"mesh axis {key!r} given twice in {text!r}", field="mesh")
        out[key] = size
    return out


def default_mesh_shape(topo: Topology, axes: tuple[str, ...] = MESH_AXES) -> tuple[int, ...]:
    """cpu: all data-parallel. Otherwise fsdp over up to 8 neighbouring devices, data across."""
    n = topo.devices
    if topo.platform == "cpu":
        sizes = {"data": n}
    else:
        fsdp = max(d for d in range(1, min(n, 8) + 1) if n % d == 0)
        sizes = {"data": n // fsdp, "fsdp": fsdp}
    return tuple(sizes.get(a, 1) for a in axes)


def _override_shape(topo: Topology, mesh: Mapping[str, int],
                    axes: tuple[str, ...]) -> tuple[int, ...]:
    if unknown := [k for k in mesh if k not in axes]:
        raise ConfigError(f"unknown mesh axis {', '.join(unknown)}; axes are {', '.join(axes)}",
                          field="mesh")
    sizes = {a: int(mesh.get(a, 1)) for a in axes}
    fill = [a for a, s in sizes.items() if s == -1]
    if len(fill) > 1 or any(s < 1 and s != -1 for s in sizes.values()):
        raise ConfigError(f"mesh sizes must be positive (one may be -1): {dict(mesh)}",
                          field="mesh")
    rest = math.prod(s for s in sizes.values() if s != -1)
    if fill:
        if topo.devices % rest:
            raise ConfigError(f"mesh {dict(mesh)}: {topo.devices} devices do not divide by "
                              f"{rest}", field="mesh")
        sizes[fill[0]] = topo.devices // rest
    elif rest != topo.devices:
        raise ConfigError(
            f"mesh {dict(mesh)} uses {rest} devices but topology {topo.name} has {topo.devices}",
            fix=f"make the sizes multiply to {topo.devices}, or set one axis to -1",
            field="mesh")
    return tuple(sizes[a] for a in axes)


TPU_LANES = 128  # the TPU vector lane width; v4/v5e/v5p MXUs are 128 x 128 (v6e's 256 x 256)


def matmul_multiple(topo: Topology, *, bf16: bool) -> int:
    """The multiple a matmul dimension (a head dim, a state dim) should be on `topo` to tile
    without padding: 128 on a TPU (a vector register row is 128 lanes, and the MXU of
    v4/v5e/v5p is 128 wide; v6e's is 256, which a multiple of 128 still tiles), 16 for
    bf16 and 8 for float32 elsewhere (GPU tensor-core tiles, CPU SIMD widths)."""
    if topo.platform == "tpu":
        return TPU_LANES
    return 16 if bf16 else 8


def plan(name: str, *, mesh: Mapping[str, int] | str | None = None, devices: int | None = None,
         rules: Mapping[str, MeshAxes] | Rules | None = None) -> MeshPlan:
    """The mesh plan for a topology name; `mesh` ('data=2,fsdp=4' or a dict) overrides sizes."""
    topo = get_topology(name, devices=devices)
    if isinstance(mesh, str):
        mesh = parse_mesh_override(mesh)
    shape = _override_shape(topo, mesh, MESH_AXES) if mesh else default_mesh_shape(topo)
    return MeshPlan(topo, shape, MESH_AXES, _normalize_rules(DEFAULT_RULES if rules is None else rules))


def logical_to_mesh_axes(logical: Sequence[str | None],
                         rules: Mapping[str, MeshAxes] | Rules | None = None, *,
                         strict: bool = False) -> jax.sharding.PartitionSpec:
    """Map per-dim logical names to a PartitionSpec; no mesh axis is used twice.

    A mesh axis claimed by two dims goes to the dim whose rule comes first in `rules`; the
    other dim keeps only its remaining axes (flax/maxtext priority semantics). With
    `strict=True` such a clash raises instead. The same logical name on two sharded dims
    always raises (it cannot be resolved).
    """
    from jax.sharding import PartitionSpec

    table = _normalize_rules(DEFAULT_RULES if rules is None else rules)
    lookup = {k: _as_tuple(v) for k, v in table}
    priority = {k: i for i, (k, _) in enumerate(table)}
    for dim, name in enumerate(logical):
        if name is not None and name not in lookup:
            raise ConfigError(f"unknown logical axis {name!r} (dim {dim} of {tuple(logical)}); "
                              f"known: {', '.join(lookup)}", fix="add a rule for it",
                              field="rules")
        if name is not None and lookup[name] and list(logical).count(name) > 1:
            raise ConfigError(f"logical axis {name!r} appears twice in {tuple(logical)}, so two "
                              f"dims would share mesh axis {_fmt_axes(table[priority[name]][1])}",
                              fix="give the dims different logical names", field="rules")
    out: list[MeshAxes] = [None] * len(logical)
    used: dict[str, int] = {}
    order = sorted((priority[n], d, n) for d, n in enumerate(logical) if n is not None)
    for _, dim, name in order:
        kept = []
        for ax in lookup[name]:
            if ax in used:
                if strict:
                    raise ConfigError(
                        f"dims {used[ax]} ({logical[used[ax]]}) and {dim} ({logical[dim]}) of "
                        f"{tuple(logical)} both map to mesh axis {ax!r}",
                        fix="change the rules or the logical names", field="rules")
                continue
            used[ax] = dim
            kept.append(ax)
        out[dim] = None if not kept else (kept[0] if len(kept) == 1 else tuple(kept))
    return PartitionSpec(*out)


def build_mesh(p: MeshPlan, devices: Sequence[Any] | None = None) -> jax.sharding.Mesh:
    """The Mesh for a plan over the present (or given) devices; TopologyMismatch if they differ.

    Axes are `AxisType.Explicit` (STYLE.md convention 10): arrays placed with NamedSharding
    carry their sharding in their type, and jit follows it. Under Explicit axes, resharding
    inside jit uses `jax.sharding.reshard` rather than `with_sharding_constraint`, and a
    matmul whose contracting dims are sharded on both sides needs `out_sharding=`.
    """
    import jax
    from jax.sharding import AxisType

    t = p.topology
    devs = list(jax.devices() if devices is None else devices)
    found = devs[0].platform if devs else "no"
    kind = f" ({devs[0].device_kind})" if devs and found == "tpu" else ""
    gen = generation_of(devs[0].device_kind) if devs and found == "tpu" else None
    if devices is None and t.platform == "cpu" and found == "cpu" and len(devs) > t.devices:
        devs = devs[: t.devices]  # a cpu plan may use the first n of the simulated devices
    wrong_gen = t.platform == "tpu" and gen is not None and t.generation in GENERATIONS \
        and gen.name != t.generation
    if found != t.platform or len(devs) != t.devices or wrong_gen:
        raise TopologyMismatch(
            f"asked for topology {t.name} ({t.summary()}) but this process sees "
            f"{len(devs)} {found} device(s){kind}",
            fix=f"run on a {t.name} slice, pass --topology cpu/auto, or use --dry-run to "
                f"inspect the plan without devices")
    return jax.make_mesh(p.shape, p.axes, axis_types=(AxisType.Explicit,) * len(p.axes),
                         devices=devs)


def named_sharding(mesh: jax.sharding.Mesh, logical_axes: Sequence[str | None],
                   rules: Mapping[str, MeshAxes] | Rules | None = None,
                   ) -> jax.sharding.NamedSharding:
    """NamedSharding of an array whose dims carry these logical names."""
    from jax.sharding import NamedSharding

    spec = logical_to_mesh_axes(logical_axes, rules)
    if missing := [ax for e in spec for ax in _as_tuple(e) if ax not in mesh.axis_names]:
        raise ConfigError(f"rules use mesh axes {missing} that mesh {mesh.axis_names} lacks",
                          field="rules")
    return NamedSharding(mesh, spec)


def shard(array: Any, mesh: jax.sharding.Mesh, logical_axes: Sequence[str | None],
          rules: Mapping[str, MeshAxes] | Rules | None = None) -> jax.Array:
    """Place `array` [any shape] on `mesh` by its logical axes.

    Host (numpy) arrays go through `make_array_from_callback`, which also works when the
    mesh spans several processes (each process fills its own shards from its full copy).
    """
    import jax
    import numpy as np

    if len(logical_axes) != np.ndim(array):
        raise ConfigError(f"{len(logical_axes)} logical axes {tuple(logical_axes)} for an "
                          f"array of rank {np.ndim(array)}", field="rules")
    sharding = named_sharding(mesh, logical_axes, rules)
    if isinstance(array, jax.Array):
        return jax.device_put(array, sharding)
    host = np.asarray(array)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
