"""`chaos train-jepa --dry-run` and `chaos topology --preset`: what a run would need on a
topology, and whether the preset is sized for it, without training or the devices.

- Parameters: counted from the abstract model (`nnx.eval_shape`: nothing is allocated).
- Per-device parameter memory: each parameter's bytes divided by the mesh axes its logical
  axes map onto (the same rules training uses), summed; the EMA target encoder is included.
- Optimizer: AdamW keeps two float32 moments per trainable parameter, sharded like it.
- Activations: measured, not guessed: one training step (forward + backward) for the
  per-device batch is compiled on this host's XLA and its temporary memory read from the
  compiled memory analysis. On CPU this approximates the accelerator's figure (fusion and
  layouts differ); the number is labelled with the backend it came from.

Sizing checks (`Check`), each `ok` or a verdict with the fix:
- batch: the global batch must split evenly over the data x fsdp shards (training refuses
  it otherwise); on an accelerator, fewer than `MIN_BARS_PER_DEVICE` bars per device and
  step leave the chips mostly idle (too small).
- memory: parameters, optimizer moments and activations per device against the HBM: above
  `FULL_SHARE` it does not fit (too large); below `IDLE_SHARE` (with activations measured)
  the slice is far larger than the model needs (too small).
- alignment: the Mamba head dim, the SSD state dim and the macro attention's head dim
  should be multiples of `topology.matmul_multiple` (128 on TPUs, 16/8 elsewhere).
- preset: which preset `preset_for` sizes for this topology, when another one is used.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from strates.core.topology import MeshPlan, matmul_multiple
from strates.jepa.config import SIZED_FOR, Config, Dtype, preset_for

MIN_BARS_PER_DEVICE = 2048
FULL_SHARE = 0.9
IDLE_SHARE = 0.01


@dataclasses.dataclass(frozen=True)
class Params:
    total: int  # context encoder, predictor and EMA target
    trainable: int
    context_encoder: int


@dataclasses.dataclass(frozen=True)
class Memory:
    """GiB per device; `activations` None when not measured."""

    params: float
    optimizer: float
    activations: float | None = None
    hbm: float | None = None

    @property
    def total(self) -> float:
        return self.params + self.optimizer + (self.activations or 0.0)

    @property
    def fits(self) -> bool | None:
        return None if self.hbm is None else self.total < FULL_SHARE * self.hbm


@dataclasses.dataclass(frozen=True)
class Check:
    """One sizing check: `what` was checked, its `verdict` (`ok`, `too small`, `uneven`,
    `too large`, `misaligned`, `other preset`) and the `detail`, with the fix when not ok."""

    what: str
    verdict: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


@dataclasses.dataclass(frozen=True)
class DryRun:
    """A planned run: the mesh plan, the preset(s) and why, the parameters, the batch, the
    per-device memory and the sizing checks."""

    mesh: MeshPlan
    preset: tuple[str, ...]
    picked: bool  # chosen by `preset_for(topology)` rather than by --preset
    params: Params
    batch: int
    per_device: int
    window: int
    memory: Memory
    checks: tuple[Check, ...]
    activations_measured_on: str | None = None

    @property
    def data_shards(self) -> int:
        sizes = self.mesh.axis_sizes
        return sizes.get("data", 1) * sizes.get("fsdp", 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON for `chaos train-jepa --dry-run --json`: the mesh plan and `sizing()`."""
        return {"plan": self.mesh.to_dict(), **self.sizing()}

    def sizing(self) -> dict[str, Any]:
        """The preset, parameters, batch, per-device memory (GiB) and checks, as JSON."""
        gib = {k: v for k, v in dataclasses.asdict(self.memory).items() if v is not None}
        gib["total"] = self.memory.total
        out: dict[str, Any] = {
            "preset": list(self.preset), "preset_picked": self.picked,
            "params": dataclasses.asdict(self.params),
            "batch": {"global": self.batch, "per_device": self.per_device, "window": self.window},
            "per_device_gib": gib,
            "checks": [{**dataclasses.asdict(c), "ok": c.ok} for c in self.checks],
        }
        if self.activations_measured_on:
            out["activations_measured_on"] = self.activations_measured_on
        if self.memory.fits is not None:
            out["fits"] = self.memory.fits
        return out

    def lines(self) -> list[str]:
        """What the CLI prints: the topology plan, then the preset, sizes and checks."""
        why = "sized for this topology" if self.picked else "as asked"
        p, g = self.params, self.memory
        parts = [f"params {g.params:.3f}", f"optimizer {g.optimizer:.3f}"]
        if g.activations is not None:
            parts.append(f"activations {g.activations:.3f}")
        where = f" (activations measured on {self.activations_measured_on})" if self.activations_measured_on else ""
        lines = [*self.mesh.describe(),
                 f"preset    {' + '.join(self.preset)} ({why})",
                 f"params    {p.total:,} in all ({p.trainable:,} trained, {p.context_encoder:,} in the context "
                 "encoder; the rest: predictor and EMA target)",
                 f"batch     {self.batch} global over {self.data_shards} data shard(s): {self.per_device} per "
                 f"device, {self.window} bars each",
                 f"memory    per device GiB: {', '.join(parts)}; total {g.total:.3f}{where}"]
        if g.fits is not None:
            lines.append(f"fits      {'yes' if g.fits else 'NO'} in {g.hbm:g} GiB HBM per device")
        lines += [f"{'check' if c.ok else 'WARNING'}   {c.what}: {c.verdict}; {c.detail}" for c in self.checks]
        return lines

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


def checks(config: Config, mesh: MeshPlan, *, preset: tuple[str, ...], memory: Memory) -> tuple[Check, ...]:
    """The sizing checks of `config` (from `preset`) on `mesh` (see the module docstring)."""
    t = mesh.topology
    sizes = mesh.axis_sizes
    shards = sizes.get("data", 1) * sizes.get("fsdp", 1)
    batch, window = config.train.batch_size, config.data.window
    out = []
    sized = SIZED_FOR.get(preset[-1]) if preset else None
    better = max(shards, (sized.per_device if sized else 1) * shards)
    if batch % shards:
        out.append(Check("batch", "too small" if batch < shards else "uneven",
                         f"a global batch of {batch} does not split over {shards} data shards "
                         f"({mesh.mesh_str()}); training refuses it. Fix: --set train.batch_size={better}"))
    elif t.platform != "cpu" and batch // shards * window < MIN_BARS_PER_DEVICE:
        out.append(Check("batch", "too small",
                         f"{batch // shards} sequence(s) of {window} bars per device and step "
                         f"({batch // shards * window:,} bars, under {MIN_BARS_PER_DEVICE:,}) leave the chips mostly "
                         f"idle. Fix: --set train.batch_size={better} or a larger preset"))
    else:
        out.append(Check("batch", "ok", f"{batch // shards} sequence(s) of {window} bars per device"))
    if memory.hbm is not None:
        share = memory.total / memory.hbm
        what = "parameters, optimizer" + (" and activations" if memory.activations is not None else "")
        detail = f"{what}: {memory.total:.3f} of {memory.hbm:g} GiB HBM per device ({share:.1%})"
        if share >= FULL_SHARE:
            out.append(Check("memory", "too large", f"{detail}. Fix: a smaller batch or preset, or a larger slice"))
        elif memory.activations is not None and share < IDLE_SHARE:
            out.append(Check("memory", "too small", f"{detail}: the slice is far larger than this model needs. "
                                                    "Fix: a larger preset, or a smaller slice"))
        else:
            out.append(Check("memory", "ok", detail))
    m = config.model
    multiple = matmul_multiple(t, bf16=m.dtype == Dtype.BFLOAT16)
    dims = {"model.head_dim": m.head_dim, "model.d_state": m.d_state,
            "macro head dim (d_model / macro_heads)": m.d_model // m.macro_heads}
    bad = [f"{name} = {value}" for name, value in dims.items() if value % multiple]
    where = f"TPU {t.generation} lanes" if t.platform == "tpu" else f"{m.dtype} matmul tiles on {t.platform}"
    if bad:
        out.append(Check("alignment", "misaligned", f"{', '.join(bad)}: not a multiple of {multiple} ({where}); "
                                                    "the matmuls are padded. Fix: a preset sized for this topology"))
    else:
        out.append(Check("alignment", "ok", f"head, state and macro head dims are multiples of {multiple} ({where})"))
    own = preset_for(t)
    if preset and own not in preset:
        target = SIZED_FOR.get(preset[-1])
        was = f" (sized for {target.describe()})" if target else ""
        out.append(Check("preset", "other preset", f"{' + '.join(preset)}{was} is not the preset sized for {t.name}; "
                                                   f"that is {own} (--preset {own})"))
    return tuple(out)


def dry_run(config: Config, *, preset: tuple[str, ...] = (), picked: bool = False, topology: str | None = None,
            mesh: str | None = None, n_assets: int = 8, n_macro: int = 3, vocab: int = 1024,
            measure_activations: bool = True) -> DryRun:
    """Plan `config` (from `preset`) on `topology` (default: `config.device`) without
    devices: parameters, batch, per-device memory and the sizing checks."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from strates.core import topology as topo
    from strates.jepa.jepa_loss import target_mask
    from strates.jepa.layers import fit_spec
    from strates.jepa.model import build_model
    from strates.jepa.train import make_loss

    plan = topo.plan(topology or config.device.topology, mesh=mesh if topology else config.device.mesh)
    sizes = plan.axis_sizes
    abstract = nnx.eval_shape(lambda: build_model(config, n_assets=n_assets, n_macro=n_macro, vocab=vocab, seed=0))
    graphdef, params = nnx.split(abstract, nnx.Param)

    def per_device_bytes(variable) -> float:
        spec = fit_spec(variable.shape, variable.get_metadata()["out_sharding"], sizes, plan.rules)
        shards = 1
        for entry in spec:
            for axis in (entry if isinstance(entry, tuple) else (entry,)):
                if axis is not None:
                    shards *= sizes[axis]
        return math.prod(variable.shape) * jnp.dtype(variable.dtype).itemsize / shards

    def is_var(x):
        return isinstance(x, nnx.Variable)

    leaves = jax.tree.leaves(params, is_leaf=is_var)
    frozen = jax.tree.leaves(target_mask(params))
    counts = Params(
        total=int(sum(math.prod(v.shape) for v in leaves)),
        trainable=int(sum(math.prod(v.shape) for v, f in zip(leaves, frozen, strict=True) if not f)),
        context_encoder=int(sum(math.prod(v.shape) for v in jax.tree.leaves(nnx.state(abstract.context, nnx.Param),
                                                                           is_leaf=is_var))),
    )
    shards = sizes.get("data", 1) * sizes.get("fsdp", 1)
    per_device = max(1, config.train.batch_size // shards)
    activations, backend = None, None
    if measure_activations:
        loss_fn = make_loss(graphdef, config, interval_s=3600.0)
        batch = {
            "tokens": jax.ShapeDtypeStruct((per_device, config.data.window), jnp.int32),
            "assets": jax.ShapeDtypeStruct((per_device,), jnp.int32),
            "macro": jax.ShapeDtypeStruct((per_device, config.data.window, n_macro), jnp.float32),
        }
        grad = jax.jit(jax.grad(lambda p, b, k: loss_fn(p, b, k)[0]))
        compiled = grad.lower(params, batch, jax.ShapeDtypeStruct((), jax.random.key(0).dtype)).compile()
        analysis = compiled.memory_analysis()  # None where the backend does not report it
        if analysis is not None:
            activations, backend = analysis.temp_size_in_bytes / 2**30, jax.default_backend()
    memory = Memory(
        params=sum(per_device_bytes(v) for v in leaves) / 2**30,
        optimizer=2 * sum(per_device_bytes(v) for v, f in zip(leaves, frozen, strict=True) if not f) / 2**30,
        activations=activations, hbm=plan.topology.hbm_gib_per_device,
    )
    return DryRun(mesh=plan, preset=tuple(preset), picked=picked, params=counts, batch=config.train.batch_size,
                  per_device=per_device, window=config.data.window, memory=memory,
                  checks=checks(config, plan, preset=tuple(preset), memory=memory), activations_measured_on=backend)
