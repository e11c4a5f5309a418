"""`ssd(...)`: one entry point that picks the SSD form for the backend at hand.

Dimension letters as in `kernels.ssd` (B L H P G N).

| impl | form | where it is the right choice |
| ---- | ---- | ---------------------------- |
| "pallas" | `kernels.ssd.pallas.ssd_pallas` | TPU / GPU; on CPU it runs in interpret mode (slow: tests) |
| "xla" | `kernels.ssd.chunked.ssd_chunked` | CPU, training and inference alike, and anywhere Pallas does not lower |
| "reference" | `kernels.ssd.reference.ssd_reference` | the definition; never faster on CPU in benchmarks/ssd.py |
| "auto" | resolved by `resolve_impl` (`AUTO_RULE`) | the default |
"""

from __future__ import annotations

import jax

from kernels.ssd.chunked import check_inputs, ssd_chunked
from kernels.ssd.pallas import ssd_pallas
from kernels.ssd.reference import ssd_reference

IMPLS = ("auto", "xla", "pallas", "reference")
NATIVE_PALLAS_BACKENDS = ("tpu", "gpu", "cuda", "rocm")

AUTO_RULE = """\
auto = "pallas" on a TPU or GPU backend, "xla" (the chunked form) everywhere else. The rule
depends on the backend alone, not on whether gradients are taken: on CPU, benchmarks/ssd.py
measured the chunked form faster than the reference scan for inference as well as training
(B=2, H=8, P=N=64, fp32, 2 shared cores: forward about 2x / 3x / 2x at L = 512 / 2048 / 8192,
forward+backward 14-18x), and a sequence shorter than one chunk runs as a single chunk of its
own length, which keeps even L = 16 on par with the scan."""


def resolve_impl(impl: str = "auto", *, backend: str | None = None) -> str:
    """The concrete form ("xla", "pallas" or "reference") that `ssd` runs for `impl`.

    Args:
      impl: one of IMPLS; a named form is returned as is, "auto" follows `AUTO_RULE`.
      backend: the JAX backend name; None = `jax.default_backend()`.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown SSD impl {impl!r}; valid: {', '.join(IMPLS)}")
    if impl != "auto":
        return impl
    backend = jax.default_backend() if backend is None else backend
    return "pallas" if backend in NATIVE_PALLAS_BACKENDS else "xla"


def ssd(x, dt, A, B, C, D=None, *, chunk: int = 64, initial_state=None, impl: str = "auto"):
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

    Returns:
      (y [B, L, H, P] in x.dtype, final_state [B, H, P, N] float32). Differentiable in every form.
    """
    form = resolve_impl(impl)
    check_inputs(x, dt, A, B, C, D, initial_state, chunk=chunk)
    if form == "pallas":
        return ssd_pallas(x, dt, A, B, C, D, chunk=chunk, initial_state=initial_state)
    if form == "xla":
        return ssd_chunked(x, dt, A, B, C, D, chunk=chunk, initial_state=initial_state)
    return ssd_reference(x, dt, A, B, C, D, initial_state=initial_state)
