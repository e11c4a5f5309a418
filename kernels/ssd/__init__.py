"""The Mamba-2 state-space-duality (SSD) scan (Dao & Gu, "Transformers are SSMs", ICML 2024).

Dimension letters used across this package:

| letter | meaning |
| ------ | ------- |
| B | batch |
| L | sequence length |
| H | heads |
| P | head dimension (channels per head) |
| G | groups of heads sharing B and C (H % G == 0) |
| N | state dimension |

The recurrence, per head h (A_h < 0 a scalar, dt_t > 0):

    S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T        S: [P, N]
    y_t = S_t C_t + D_h x_t

`reference.ssd_reference` is the readable definition every other form is tested against.

| module | function | what it is |
| ------ | -------- | ---------- |
| reference | `ssd_reference` | the recurrence with `lax.scan`: the definition |
| chunked | `ssd_chunked` | the chunked SSD algorithm in pure JAX (XLA path, and the VJP of record) |
| pallas | `ssd_pallas` | a Pallas kernel walking chunks per (batch, head); backward = chunked VJP |
| step | `ssd_step` | one recurrent step, O(1) per token, for decoding from a carried state |
| dispatch | `ssd` | picks a form by backend (`impl="auto"`), or the one named |
"""

from kernels.ssd.chunked import ssd_chunked
from kernels.ssd.dispatch import AUTO_RULE, IMPLS, resolve_impl, ssd
from kernels.ssd.pallas import ssd_pallas
from kernels.ssd.reference import ssd_reference
from kernels.ssd.step import ssd_step

__all__ = [
    "AUTO_RULE",
    "IMPLS",
    "resolve_impl",
    "ssd",
    "ssd_chunked",
    "ssd_pallas",
    "ssd_reference",
    "ssd_step",
]
