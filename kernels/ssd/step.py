"""One SSD recurrence step, for O(1)-per-step decoding from a carried state.

Dimension letters as in `kernels.ssd` (B H P G N); there is no L: one time step.

    S' = exp(dt A) S + dt x B^T        y = S' C + D x

Prefill a prompt with `ssd_chunked` / `ssd` (its final state), then call `ssd_step` once per
new token: the cost is independent of how much history the state summarises.
"""

from __future__ import annotations

import jax.numpy as jnp

_F32 = jnp.float32


def ssd_step(state, x_t, dt_t, A, B_t, C_t, D=None):
    """Advance the SSD state by one step.

    Args:
      state: [B, H, P, N] state before this step (any float dtype; carried in float32).
      x_t:  [B, H, P] input at this step.
      dt_t: [B, H] positive step size.
      A:    [H] negative decay rates.
      B_t:  [B, G, N] input projection (shared by the H // G heads of a group).
      C_t:  [B, G, N] output projection.
      D:    [H] skip weights, or None.

    Returns:
      (y_t [B, H, P] in x_t.dtype, new_state [B, H, P, N] float32).
    """
    b, h, p = x_t.shape
    g, n = B_t.shape[-2:]
    if state.shape != (b, h, p, n) or dt_t.shape != (b, h) or C_t.shape != B_t.shape or h % g:
        raise ValueError(
            f"ssd_step shapes disagree: state {state.shape} (want {(b, h, p, n)}), x_t {x_t.shape}, "
            f"dt_t {dt_t.shape} (want {(b, h)}), B_t {B_t.shape}, C_t {C_t.shape} (want [B, G, N], H % G == 0)"
        )
    rep = h // g
    xf, dtf = x_t.astype(_F32), dt_t.astype(_F32)
    Bh = jnp.repeat(B_t.astype(_F32), rep, axis=1)  # [B, H, N]
    Ch = jnp.repeat(C_t.astype(_F32), rep, axis=1)
    decay = jnp.exp(dtf * A.astype(_F32))[..., None, None]  # [B, H, 1, 1]
    new_state = decay * state.astype(_F32) + (dtf[..., None] * xf)[..., :, None] * Bh[..., None, :]
    y = jnp.einsum("bhpn,bhn->bhp", new_state, Ch, preferred_element_type=_F32)
    if D is not None:
        y = y + xf * D.astype(_F32)[:, None]
    return y.astype(x_t.dtype), new_state
