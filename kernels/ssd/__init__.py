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
"""

from kernels.ssd.reference import ssd_reference

__all__ = ["ssd_reference"]
