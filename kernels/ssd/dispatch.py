"""`ssd(...)`: one entry point that picks the SSD form for the backend at hand.

Dimension letters as in `kernels.ssd` (B L H P G N).

| impl | form | where it is the right choice |
| ---- | ---- | ---------------------------- |
| "pallas" | `kernels.ssd.pallas.ssd_pallas` | TPU / GPU (native lowering); on CPU it runs in interpret mode (slow, for tests) |
| "xla" | `kernels.ssd.chunked.ssd_chunked` | CPU training, and anywhere Pallas does not lower |
| "reference" | `kernels.ssd.reference.ssd_reference` | the definition; see `AUTO_RULE` for when it wins on CPU |
| "auto" | resolved by `resolve_impl` | the default |
"""

from __future__ import annotations

import jax

from kernels.ssd.chunked import check_inputs, ssd_chunked
from kernels.ssd.pallas import ssd_pallas
from kernels.ssd.reference import ssd_reference

IMPLS = ("auto", "xla", "pallas", "reference")
NATIVE_PALLAS_BACKENDS = ("tpu", "gpu", "cuda", "rocm")

AUTO_RULE = """\
auto: "pallas" on a TPU/GPU backend; elsewhere (CPU) "xla" (the chunked form), which is
faster and far lighter in memory for training; for CPU inference (for_training=False) it
stays "xla" too, because benchmarks/ssd.py measured the chunked forward as fast as or faster
than the reference scan at every length it tried (L = 512, 2048, 8192)."""


def resolve_impl(impl: str = "auto", *, backend: str | None = None, for_training: bool = True) -> str:
    """The concrete form ("xla", "pallas" or "reference") that `ssd` will run.

    Args:
      impl: one of IMPLS.
      backend: the JAX backend name; None = `jax.default_backend()`.
      for_training: whether gradients will be taken (JAX cannot tell from inside).
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown SSD impl {impl!r}; valid: {', '.join(IMPLS)}")
    if impl != "auto":
        return impl
    backend = jax.default_backend() if backend is None else backend
    if backend in NATIVE_PALLAS_BACKENDS:
        return "pallas"
    del for_training  # on CPU the chunked form wins for training and inference alike (AUTO_RULE)
    return "xla"


def ssd(
    x, dt, A, B, C, D=None, *, chunk: int = 64, initial_state=None, impl: str = "auto", for_training: bool = True
):
    """The Mamba-2 SSD scan through the form `impl` names (see `AUTO_RULE` for "auto").

    Args:
      x:  [B, L, H, P] inputs.
      dt: [B, L, H] positive step sizes.
      A:  [H] negative decay rates.
      B:  [B, L, G, N] input projections.
      C:  [B, L, G, N] output projections.
      D:  [H] skip weights, or None.
      chunk: Q, the chunk length of the chunked and Pallas forms (ignored by the reference).
      initial_state: [B, H, P, N] state before the first step, or None (zeros).
      impl: "auto", "xla", "pallas" or "reference".
      for_training: whether gradients will be taken; only "auto" reads it.

    Returns:
      (y [B, L, H, P] in x.dtype, final_state [B, H, P, N] float32).
    """
    form = resolve_impl(impl, for_training=for_training)
    check_inputs(x, dt, A, B, C, D, initial_state, chunk=chunk)
    if form == "pallas":
        return ssd_pallas(x, dt, A, B, C, D, chunk=chunk, initial_state=initial_state)
    if form == "xla":
        return ssd_chunked(x, dt, A, B, C, D, chunk=chunk, initial_state=initial_state)
    return ssd_reference(x, dt, A, B, C, D, initial_state=initial_state)
