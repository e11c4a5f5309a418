"""The SSD recurrence written plainly with `lax.scan`: the definition, not the fast path."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def ssd_reference(x, dt, A, B, C, D=None, *, initial_state=None):
    """Run the Mamba-2 SSD recurrence step by step.

    Args:
      x:  [B, L, H, P] inputs.
      dt: [B, L, H] positive step sizes (already softplus-ed, bias added).
      A:  [H] negative decay rates.
      B:  [B, L, G, N] input projections (shared by the H // G heads of a group).
      C:  [B, L, G, N] output projections.
      D:  [H] skip weights, or None.
      initial_state: [B, H, P, N] state before the first step, or None (zeros).

    Returns:
      (y [B, L, H, P] in x.dtype, final_state [B, H, P, N] float32). Accumulation is float32.
    """
    b, _length, h, p = x.shape
    g, n = B.shape[-2], B.shape[-1]
    rep = h // g
    f32 = jnp.float32
    xf, dtf = x.astype(f32), dt.astype(f32)
    Bh = jnp.repeat(B.astype(f32), rep, axis=2)  # [B, L, H, N]
    Ch = jnp.repeat(C.astype(f32), rep, axis=2)
    state0 = jnp.zeros((b, h, p, n), f32) if initial_state is None else initial_state.astype(f32)

    def step(state, inputs):
        x_t, dt_t, B_t, C_t = inputs  # [B,H,P], [B,H], [B,H,N], [B,H,N]
        decay = jnp.exp(dt_t * A.astype(f32))[..., None, None]  # [B, H, 1, 1]
        state = decay * state + (dt_t[..., None, None] * x_t[..., :, None] * B_t[..., None, :])
        y_t = jnp.einsum("bhpn,bhn->bhp", state, C_t)
        return state, y_t

    seq = (jnp.moveaxis(xf, 1, 0), jnp.moveaxis(dtf, 1, 0), jnp.moveaxis(Bh, 1, 0), jnp.moveaxis(Ch, 1, 0))
    final, ys = jax.lax.scan(step, state0, seq)
    y = jnp.moveaxis(ys, 0, 1)
    if D is not None:
        y = y + xf * D.astype(f32)[:, None]
    return y.astype(x.dtype), final
