"""The embedded dataset: a deterministic, offline market built from chaotic drivers.

`chaos ingest` without `--source` uses it; it goes through the same validation as files.
Everything comes from one `numpy.random.Generator(PCG64(seed))`; nothing is read or fetched.

Generative process (asset i, bar t; all parameters are fields of `EmbeddedSpec`):

* Drivers: `drivers_per_family` Lorenz-63 (sigma=10, rho=28, beta=8/3) and as many Rossler
  (a=0.2, b=0.2, c=5.7) systems, fixed-step RK4 with `substeps` steps per bar, advancing
  `DT_PER_BAR` model time units per bar after a spin-up. Asset i reads driver d(i) (its
  family: `LRZ-*` or `RSS-*`, assets alternate families), `lag_i` in [0, max_lag] bars late,
  through features f = tanh(standardised (x, y, z)). Assets on one driver are correlated.
* Regimes: s_t in {calm, turbulent, trending}, a Markov chain with expected stays
  `regime_stay` bars (sampled as geometric durations). Asset i follows the global chain while
  a slow coupling chain says so (share `regime_share` of the time), otherwise its own chain.
  Each trending episode draws a direction q = +-1.
* Returns:  log sigma_it = log(base_i * regime_vol[s]) + vol_loading * (w_i . f_it) (centred)
            mu_it = sigma_it * (drift_loading * k_i * (u_i . f_it) + regime_drift[s] * q_it)
            r_it  = mu_it + sigma_it * (sqrt(c) eta_dt + sqrt(1-c) xi_it) + J_it
  with eta, xi Student-t(`student_df`) scaled to unit variance, c = `shock_corr` (shared by
  assets on one driver), J ~ N(0, (jump_scale sigma)^2) with probability `jump_prob`;
  w_i, u_i are unit loadings near the z- and x-axes, k_i = +-1.
* Bars: open_t = close_{t-1} * exp(g_t) (g != 0 with probability `gap_prob`, a tiny gap);
  `intrabar_steps` points of a Brownian bridge (scale sigma) from log open to log close give
  high/low as the true path max/min. log volume = log V_i + log(sigma/base_i)
  + 0.5 |r|/sigma + N(0, 0.35^2).
* Macro (long format, `history_days` of earlier history, lags in `MACRO_LAGS`):
  `rate_10y` each business day (lag 1 day): 3 + 1.2 EMA_5d(stress) + AR(1) noise;
  `cot_net` each Tuesday, public Friday 20:30 UTC: 1e5 EMA_10d(trend) + AR(1) noise;
  `cpi_yoy` the 1st of each month, public 45 days later: 2.5 + 2 mean_month(stress) + noise;
  stress = 1[global turbulent] + mean_i driver log-vol term, trend = 1[trending] q.

Planted edge (`signal` = kappa, `chaos ingest --signal`; kappa = 0: the data and the dataset
id are those without the option):

* u_it = w_i . f_it - its mean: the volatility factor (the part of log sigma the driver
  moves; it shows in the bars' range, |returns| and volume). slow_t, fast_t: its EMAs of
  half-lives SIGNAL_HALFLIFE = 192 and 96 bars (causal, started at u_0).
* g(s_t) = SIGNAL_SCALE tanh(slow_t / SIGNAL_LEVEL) tanh((fast_t - slow_t) / SIGNAL_TREND),
  |g| <= SIGNAL_SCALE = 0.2: volatility above its mean and rising, or below and falling,
  pushes prices up; the other two cases down. A product (g(-u) = g(u)), so no linear function
  of u, or of either EMA, holds it.
* The next bar's log return gets kappa sigma_it g(s_it): r_i,t+1 += kappa sigma_t g_t
  (`Simulation.planted` at t). g reads u_0..u_t only and draws no random number, so kappa
  changes no other draw (volume moves with |r| as for any return).
* The oracle (`oracle_positions`, measured by `strates.data.summary.signal_summary`): holds
  g_t / SIGNAL_SCALE in [-1, 1] over bar t+1 (the expected planted return in units of its
  largest value: a clipped size, not a sign; flat at kappa = 0).

Measured on the default market (first fold 0.7/0.15/0.15, 8,766 bars a year), oracle Sharpe
after 5 bps on train / validation / test:

    kappa 0     0.00 /  0.00 / 0.00
    kappa 0.05 -0.26 / -0.43 / 1.39
    kappa 0.1   0.28 /  0.17 / 1.92
    kappa 0.2   1.38 /  1.35 / 2.97
    kappa 0.4   3.56 /  3.73 / 5.06

Each step of 0.05 in kappa adds about 0.55 of Sharpe; the offset at kappa -> 0+ is the costs
of the oracle's turnover (about -0.5 at 5 bps) plus the chance Sharpe of its positions against
the unplanted returns, which on ~1,300 bars has a standard error of about 2.6 (+1.0 on this
test period, -0.8 on train).

Integration runs in plain Python floats per system: with only 2 * drivers_per_family
systems, numpy's per-call overhead made a vectorised RK4 ~10x slower.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl

from strates.data.schema import BAR_SCHEMA, MACRO_SCHEMA

LORENZ = (10.0, 28.0, 8.0 / 3.0)  # sigma, rho, beta
ROSSLER = (0.2, 0.2, 5.7)  # a, b, c
FAMILIES = ("LRZ", "RSS")
DT_PER_BAR = {"LRZ": 0.02, "RSS": 0.1}  # model time per bar: a lobe/orbit lasts ~35-60 bars
SPINUP_BARS = 300
REGIMES = ("calm", "turbulent", "trending")
SIGNAL_HALFLIFE = 192.0  # bars: half-life of the slow EMA of the volatility factor in g (fast: half)
SIGNAL_LEVEL = 0.1  # scale of the slow EMA (the volatility level) in g
SIGNAL_TREND = 0.06  # scale of fast - slow (the volatility trend) in g
SIGNAL_SCALE = 0.2  # sup |g|: sets the oracle Sharpe per unit of kappa (module docstring)
SIGNAL_DEFINITION = (
    f"bar t+1's log return gets kappa sigma_t g(s_t), g = {SIGNAL_SCALE:g} tanh(slow_t / {SIGNAL_LEVEL:g}) "
    f"tanh((fast_t - slow_t) / {SIGNAL_TREND:g}), slow_t and fast_t the causal EMAs (half-lives "
    f"{SIGNAL_HALFLIFE:g} and {SIGNAL_HALFLIFE / 2:g} bars) of the asset's volatility factor u_t (the part of log "
    "sigma the chaotic driver moves)")
MACRO_LAGS: dict[str, dt.timedelta] = {
    "rate_10y": dt.timedelta(days=1),  # daily, business days, public next day
    "cot_net": dt.timedelta(days=3, hours=20, minutes=30),  # as of Tuesday, public Friday 20:30
    "cpi_yoy": dt.timedelta(days=45),  # month's value dated the 1st, public ~45 days later
}


@dataclasses.dataclass(frozen=True)
class EmbeddedSpec:
    """Every parameter of the embedded dataset (hashed into the dataset artifact id)."""

    seed: int = 20261121  # PCG64 seed: the only source of randomness
    assets: int = 6  # assets alternate driver families: LRZ-A, RSS-B, LRZ-C, ...
    bars: int = 8760  # bars per asset (one year of hourly bars)
    interval_minutes: int = 60  # bar length
    start: str = "2024-01-01T00:00:00Z"  # open time of the first bar (UTC)
    history_days: int = 120  # macro history before `start`
    drivers_per_family: int = 2  # chaotic systems per family (assets share them)
    substeps: int = 4  # RK4 steps per bar
    max_lag: int = 6  # asset i reads its driver lag_i ~ U{0..max_lag} bars late
    intrabar_steps: int = 12  # Brownian-bridge points per bar for high/low
    base_vol: float = 0.006  # typical hourly log-return s.d. (x exp(U(-0.3, 0.3)) per asset)
    vol_loading: float = 0.6  # driver -> log-volatility
    drift_loading: float = 0.05  # driver -> drift, in units of sigma
    regime_stay: tuple[float, ...] = (600.0, 150.0, 300.0)  # expected bars in calm/turb/trend
    regime_vol: tuple[float, ...] = (0.7, 2.0, 1.0)  # volatility multiplier per regime
    regime_drift: tuple[float, ...] = (0.0, 0.0, 0.08)  # drift per regime, units of sigma
    regime_share: float = 0.7  # share of time an asset follows the global regime chain
    shock_corr: float = 0.4  # shock correlation between assets on the same driver
    student_df: float = 4.0  # Student-t degrees of freedom of the shocks
    jump_prob: float = 0.002  # probability of a jump per bar
    jump_scale: float = 5.0  # jump s.d. in units of sigma
    gap_prob: float = 0.01  # probability that open != previous close (gap s.d. 0.2 sigma)
    signal: float = 0.0  # kappa: strength of the planted edge (0: none; module docstring, "Planted edge")

    def __post_init__(self) -> None:
        if min(self.assets, self.bars - 1, self.interval_minutes, self.drivers_per_family,
               self.substeps, self.intrabar_steps - 1) < 1 or self.history_days < 0:
            raise ValueError(f"sizes must be positive: {self}")
        if not len(self.regime_stay) == len(self.regime_vol) == len(self.regime_drift) == 3:
            raise ValueError("regime_stay, regime_vol, regime_drift need one value per regime")
        if self.student_df <= 2 or min(self.regime_stay) < 1:
            raise ValueError("student_df must exceed 2 and every regime_stay be >= 1")
        for p in (self.regime_share, self.shock_corr, self.jump_prob, self.gap_prob):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"probabilities and shares must lie in [0, 1]: {self}")
        if not (math.isfinite(self.signal) and self.signal >= 0.0):
            raise ValueError(f"signal (kappa) must be a finite number >= 0, got {self.signal}")


@dataclasses.dataclass(frozen=True)
class Simulation:
    """The generated frames plus the hidden ground truth (for tests and reports)."""

    bars: pl.DataFrame  # BAR_SCHEMA, one block per asset (in `assets` order), ts ascending
    macro: pl.DataFrame  # MACRO_SCHEMA, sorted by series then observed
    assets: tuple[str, ...]  # (A,)
    regime: np.ndarray  # (A, n) int8, index into REGIMES
    sigma: np.ndarray  # (A, n) per-bar volatility of the log return
    mu: np.ndarray  # (A, n) per-bar drift of the log return
    drivers: np.ndarray  # (A, n, 3) driver features f_it in (-1, 1)
    g: np.ndarray  # (A, n) g(s_t) of the planted edge, known at bar t (`planted_g`; whatever kappa is)
    planted: np.ndarray  # (A, n) expected planted log return of bar t+1, kappa sigma_t g(s_t), known at t


def asset_names(n: int) -> tuple[str, ...]:
    """`LRZ-A`, `RSS-B`, ...: the prefix names the driver family (suffix repeats past Z)."""
    return tuple(f"{FAMILIES[i % 2]}-{chr(65 + i % 26)}{i // 26 or ''}" for i in range(n))


def _lorenz(x: float, y: float, z: float, s=LORENZ[0], r=LORENZ[1], b=LORENZ[2]):
    return s * (y - x), x * (r - z) - y, x * y - b * z


def _rossler(x: float, y: float, z: float, a=ROSSLER[0], b=ROSSLER[1], c=ROSSLER[2]):
    return -y - z, x + a * y, b + z * (x - c)


def _rk4(field, state: tuple[float, float, float], h: float, bars: int, sub: int) -> np.ndarray:
    """Fixed-step RK4, `sub` steps of size h per bar; returns the state at each bar (bars, 3)."""
    x, y, z = state
    h2, h6, out = h / 2, h / 6, []
    for _ in range(bars):
        for _ in range(sub):
            a0, a1, a2 = field(x, y, z)
            b0, b1, b2 = field(x + h2 * a0, y + h2 * a1, z + h2 * a2)
            c0, c1, c2 = field(x + h2 * b0, y + h2 * b1, z + h2 * b2)
            d0, d1, d2 = field(x + h * c0, y + h * c1, z + h * c2)
            x += h6 * (a0 + 2 * (b0 + c0) + d0)
            y += h6 * (a1 + 2 * (b1 + c1) + d1)
            z += h6 * (a2 + 2 * (b2 + c2) + d2)
        out.append((x, y, z))
    return np.array(out)


def _drivers(rng: np.random.Generator, spec: EmbeddedSpec, n: int) -> np.ndarray:
    """Driver features tanh(standardised state): (2 * drivers_per_family, n, 3), LRZ first."""
    out = []
    for fam, field in zip(FAMILIES, (_lorenz, _rossler), strict=True):
        h = DT_PER_BAR[fam] / spec.substeps
        for _ in range(spec.drivers_per_family):
            x0 = rng.normal([0.0, 0.0, 25.0], 5.0) if fam == "LRZ" else rng.normal(0.0, [3, 3, 0.1])
            x, y, z = map(float, x0)  # Python floats: numpy scalars are ~3x slower here
            path = _rk4(field, (x, y, z), h, SPINUP_BARS + n, spec.substeps)[SPINUP_BARS:]
            out.append(np.tanh((path - path.mean(0)) / path.std(0)))
    return np.stack(out)


def planted_g(u: np.ndarray) -> np.ndarray:
    """g(s_t) of the planted edge from the centred volatility factor `u [A, n]`:
    `SIGNAL_SCALE tanh(slow_t / SIGNAL_LEVEL) tanh((fast_t - slow_t) / SIGNAL_TREND)` with
    slow, fast the EMAs of u of half-lives `SIGNAL_HALFLIFE` and half of it (each started at
    u_0). Causal: g at t reads u_0..u_t only. -> `[A, n]` in [-SIGNAL_SCALE, SIGNAL_SCALE]."""
    slow, fast = _ema_rows(u, SIGNAL_HALFLIFE), _ema_rows(u, SIGNAL_HALFLIFE / 2)
    return SIGNAL_SCALE * np.tanh(slow / SIGNAL_LEVEL) * np.tanh((fast - slow) / SIGNAL_TREND)


def _ema_rows(x: np.ndarray, halflife: float) -> np.ndarray:
    """EMA along the last axis of `x [A, n]`, started at x[:, 0]."""
    a, out, m = 1 - 0.5 ** (1 / halflife), np.empty_like(x), x[:, 0].copy()
    for t in range(x.shape[1]):
        m += a * (x[:, t] - m)
        out[:, t] = m
    return out


def _markov(rng: np.random.Generator, n: int, stay) -> tuple[np.ndarray, np.ndarray]:
    """Markov chain with expected stays `stay` (geometric durations, uniform jumps to another
    state), and a +-1 direction per episode: both (n,)."""
    k = len(stay)
    states, durations, s, total = [], [], int(rng.integers(k)), 0
    while total < n:
        d = int(rng.geometric(1.0 / stay[s]))
        states.append(s)
        durations.append(d)
        total += d
        s = (s + 1 + int(rng.integers(k - 1))) % k
    sign = rng.choice([-1.0, 1.0], size=len(states))
    return np.repeat(states, durations)[:n], np.repeat(sign, durations)[:n]


def _ema(x: np.ndarray, halflife: float) -> np.ndarray:
    a, out, m = 1 - 0.5 ** (1 / halflife), np.empty_like(x), x[0]
    for i, v in enumerate(x):
        out[i] = m = m + a * (v - m)
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    e, out, m = rng.normal(0.0, sd, n), np.empty(n), 0.0
    for i in range(n):
        out[i] = m = phi * m + e[i]
    return out


def simulate(spec: EmbeddedSpec = EmbeddedSpec()) -> Simulation:
    """Generate the embedded dataset and keep its hidden states."""
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    A, n, K, nd = spec.assets, spec.bars, spec.intrabar_steps, spec.drivers_per_family
    hist = spec.history_days * 1440 // spec.interval_minutes  # bars of macro-only history
    names = asset_names(A)

    # drivers: asset i -> system d(i), read lag_i bars late
    feats = _drivers(rng, spec, n + spec.max_lag)  # (2nd, n+max_lag, 3)
    drv = np.array([(i % 2) * nd + (i // 2) % nd for i in range(A)])  # (A,)
    lag = rng.integers(0, spec.max_lag + 1, A)
    f = np.stack([feats[drv[i], spec.max_lag - lag[i]:][:n] for i in range(A)])  # (A, n, 3)
    axis = np.eye(3)
    w_vol = axis[2] + 0.5 * rng.standard_normal((A, 3))  # near z: orbit amplitude / spikes
    w_mu = axis[0] + 0.5 * rng.standard_normal((A, 3))  # near x: lobe / phase
    w_vol /= np.linalg.norm(w_vol, axis=1, keepdims=True)
    w_mu /= np.linalg.norm(w_mu, axis=1, keepdims=True)
    v = spec.vol_loading * np.einsum("anc,ac->an", f, w_vol)
    v -= v.mean(1, keepdims=True)  # (A, n) driver log-vol term
    m = np.einsum("anc,ac->an", f, w_mu) * rng.choice([-1.0, 1.0], (A, 1))  # (A, n)

    # regimes: global chain (history + bars), per-asset chains, coupling chains
    g_state, g_sign = _markov(rng, hist + n, spec.regime_stay)  # (hist+n,)
    regime, sign = np.empty((A, n), np.int8), np.empty((A, n))
    share = (max(1.0, 1000 * spec.regime_share), max(1.0, 1000 * (1 - spec.regime_share)))
    for i in range(A):
        own_state, own_sign = _markov(rng, n, spec.regime_stay)
        # (n,) state 0 = follow the global chain; a share of 0 or 1 fixes it for every bar
        coupled = (_markov(rng, n, share)[0] == 0 if 0 < spec.regime_share < 1
                   else np.full(n, spec.regime_share == 1.0))
        regime[i] = np.where(coupled, g_state[hist:], own_state)
        sign[i] = np.where(coupled, g_sign[hist:], own_sign)

    # returns (A, n)
    base = spec.base_vol * np.exp(rng.uniform(-0.3, 0.3, (A, 1)))
    sigma = base * np.asarray(spec.regime_vol)[regime] * np.exp(v)
    mu = sigma * (spec.drift_loading * m + np.asarray(spec.regime_drift)[regime] * sign)
    t_scale = math.sqrt((spec.student_df - 2) / spec.student_df)
    common = rng.standard_t(spec.student_df, (2 * nd, n))[drv] * t_scale
    own = rng.standard_t(spec.student_df, (A, n)) * t_scale
    eps = math.sqrt(spec.shock_corr) * common + math.sqrt(1 - spec.shock_corr) * own
    jump = (rng.random((A, n)) < spec.jump_prob) * rng.normal(0, spec.jump_scale, (A, n))
    r = mu + sigma * (eps + jump)
    u = np.einsum("anc,ac->an", f, w_vol)
    g = planted_g(u - u.mean(1, keepdims=True))  # (A, n) known at t: no draw, so kappa moves nothing else
    planted = spec.signal * sigma * g  # (A, n) expected planted log return of bar t+1
    if spec.signal:
        r[:, 1:] += planted[:, :-1]
    gap = (rng.random((A, n)) < spec.gap_prob) * rng.normal(0, 0.2, (A, n)) * sigma

    # OHLC from a Brownian bridge between log open and log close: (A, n, K+1) path
    log_p0 = np.log(rng.uniform(20, 500, (A, 1)))  # first open, before its gap
    log_close = log_p0 + np.cumsum(gap + r, axis=1)
    log_open = np.concatenate([log_p0, log_close[:, :-1]], 1) + gap
    walk = rng.standard_normal((A, n, K)).cumsum(-1)
    frac = np.arange(1, K) / K  # (K-1,) interior points
    bridge = (walk[..., :-1] - frac * walk[..., -1:]) * (sigma / math.sqrt(K))[..., None]
    inner = log_open[..., None] + frac * (log_close - log_open)[..., None] + bridge
    price = np.exp(np.concatenate([log_open[..., None], inner, log_close[..., None]], -1))
    volume = np.exp(rng.uniform(9, 13, (A, 1)) + np.log(sigma / base)
                    + 0.5 * np.abs(r) / sigma + rng.normal(0, 0.35, (A, n)))

    start = dt.datetime.fromisoformat(spec.start)  # naive means UTC
    start = start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start.astimezone(dt.UTC)
    step = np.timedelta64(spec.interval_minutes, "m")
    ts = np.datetime64(start.replace(tzinfo=None), "us") + np.arange(n) * step  # (n,)
    bars = pl.DataFrame({
        "asset": np.repeat(names, n),
        "ts": pl.Series(np.tile(ts, A)).dt.replace_time_zone("UTC"),
        "open": price[..., 0].ravel(), "high": price.max(-1).ravel(),
        "low": price.min(-1).ravel(), "close": price[..., -1].ravel(),
        "volume": volume.ravel(),
    }).cast(BAR_SCHEMA)
    stress = (g_state == 1) + np.concatenate([np.zeros(hist), v.mean(0)])  # (hist+n,)
    trend = (g_state == 2) * g_sign
    macro = _macro(rng, ts[0] - hist * step, step, stress, trend)
    return Simulation(bars, macro, names, regime, sigma, mu, f, g, planted)


def _macro(rng, t0: np.datetime64, step, stress: np.ndarray, trend: np.ndarray) -> pl.DataFrame:
    """The three macro series from per-bar stress/trend (T,) starting at t0 (long format)."""
    bar_day = (t0 + np.arange(len(stress)) * step).astype("datetime64[D]")  # (T,)
    days = np.unique(bar_day)  # (D,) every calendar day touched by a bar
    idx = np.searchsorted(days, bar_day)
    count = np.bincount(idx)
    s_day, q_day = np.bincount(idx, stress) / count, np.bincount(idx, trend) / count  # (D,)
    weekday = (days.astype(np.int64) + 3) % 7  # Monday = 0
    rate = 3.0 + 1.2 * _ema(s_day, 5) + _ar1(rng, len(days), 0.97, 0.03)
    cot = np.round(1e5 * _ema(q_day, 10) + _ar1(rng, len(days), 0.8, 1.5e4))
    month = days.astype("datetime64[M]")
    m_idx = np.searchsorted(np.unique(month), month)
    s_month = np.bincount(m_idx, s_day) / np.bincount(m_idx)  # (months,)
    cpi = np.round(2.5 + 2.0 * s_month[m_idx] + _ar1(rng, m_idx[-1] + 1, 0.9, 0.1)[m_idx], 2)
    first = days == month.astype("datetime64[D]")
    rows = {"rate_10y": (weekday < 5, rate), "cot_net": (weekday == 1, cot),
            "cpi_yoy": (first, cpi)}
    frames = []
    for name, (keep, value) in rows.items():
        observed = days[keep].astype("datetime64[us]")
        frames.append(pl.DataFrame({
            "series": name,
            "observed": pl.Series(observed).dt.replace_time_zone("UTC"),
            "available": pl.Series(observed + np.timedelta64(MACRO_LAGS[name], "us"))
            .dt.replace_time_zone("UTC"),
            "value": value[keep].astype(np.float64),
        }))
    return pl.concat(frames).cast(MACRO_SCHEMA).sort("series", "observed")


def oracle_positions(g: np.ndarray, kappa: float) -> np.ndarray:
    """The oracle's positions `[..., n]` from g(s_t) `[..., n]`: g / SIGNAL_SCALE in [-1, 1], the
    expected planted return kappa sigma_t g(s_t) in units of its largest value kappa sigma_t
    SIGNAL_SCALE (a clipped size, not a sign: it fades out where the edge does); held over bar
    t+1. Flat when kappa = 0 (no edge to know)."""
    return np.clip(g / SIGNAL_SCALE, -1.0, 1.0) if kappa > 0 else np.zeros_like(g)


def generate(spec: EmbeddedSpec = EmbeddedSpec()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Returns (bars in BAR_SCHEMA column order/dtypes, macro observations in MACRO_SCHEMA)."""
    sim = simulate(spec)
    return sim.bars, sim.macro
