"""The HTTP client of `chaos fetch bybit` (`strates.data.fetch_bybit`): one GET of Bybit's v5
kline endpoint with timeouts, and retries with exponential back-off and jitter.

Retried (up to `Http.attempts` tries in all): HTTP 429 and 5xx, connection errors and
timeouts, truncated or undecodable bodies, and the JSON answers `retCode` 10006 / 10018
(rate limits) and 10016 (server error). The wait before try k+1 is what the server asked
for when it said (`Retry-After` in seconds or as an HTTP date, or Bybit's
`X-Bapi-Limit-Reset-Timestamp` in epoch ms), else `backoff_s · 2^(k−1)` times a uniform
jitter in [1, 2); either way at most `max_wait_s`. Then StorageError (exit 5) naming the
URL and the last failure.

Not retried: another `retCode` (InvalidInput `bybit-error`, exit 2: Bybit refuses the
request, e.g. 10001 for an unknown symbol or interval: the user fixes it) and another HTTP
status (StorageError, exit 5: 403 is Bybit refusing this IP or region, 404 a wrong
`--base-url`).
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import random
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from strates.core.errors import ConfigError, InvalidInput, StorageError

RATE_LIMIT_CODES = frozenset({10006, 10018})  # too many visits; IP rate limit exceeded
TRANSIENT_CODES = RATE_LIMIT_CODES | {10016}  # 10016: Bybit's internal server error


@dataclasses.dataclass(frozen=True)
class Http:
    """How hard to try. `attempts`: tries per page (>= 1); `backoff_s`: the first wait (s),
    doubled at each retry; `max_wait_s`: the longest wait, also for a server's own hint;
    `connect_s` / `read_s`: timeouts (s) to connect and between bytes read."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_wait_s: float = 60.0
    connect_s: float = 10.0
    read_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"--attempts must be at least 1; got {self.attempts}", field="attempts",
                              fix="give --attempts 5 (the default), or any number >= 1")
        for name in ("backoff_s", "max_wait_s", "connect_s", "read_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0; got {getattr(self, name)}", field=name,
                                  fix="give a number of seconds >= 0")


def server_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait, from `Retry-After` (seconds or an HTTP date) or
    `X-Bapi-Limit-Reset-Timestamp` (epoch ms when the rate-limit window resets), never
    negative; None when neither header is there or readable. `now`: epoch seconds."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
    if reset:
        try:
            return max(0.0, float(reset) / 1000 - now)
        except ValueError:
            return None
    return None


def backoff(attempt: int, http: Http, rng: random.Random) -> float:
    """The wait after failed try `attempt` (1-based) when the server gave no hint:
    `backoff_s · 2^(attempt−1) · u`, u uniform in [1, 2), at most `max_wait_s`."""
    return min(http.max_wait_s, http.backoff_s * 2 ** (attempt - 1) * (1 + rng.random()))


@dataclasses.dataclass(frozen=True)
class _Retry:
    """A failed try worth repeating: what happened, and the server's wait hint (s)."""

    reason: str
    wait: float | None = None


class Client:
    """GETs Bybit v5 klines from `base_url` (no trailing `/v5/...`) over a pooled urllib3
    connection. `sleep(seconds)` waits between tries; `on_retry(message)` hears about each
    retry; `retries` counts them. `rng` (default: seeded from the clock) draws the jitter."""

    def __init__(self, base_url: str, http: Http, *, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str], None] | None = None, rng: random.Random | None = None):
        import urllib3

        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url {base_url!r} is not an http(s) URL", field="base_url",
                              fix="give e.g. https://api.bybit.com (or set CHAOS_BYBIT_URL)")
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.sleep = sleep
        self.on_retry = on_retry or (lambda message: None)
        self.rng = rng or random.Random()
        self.retries = 0
        self._pool = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=http.connect_s, read=http.read_s),
            headers={"Accept": "application/json", "User-Agent": "chaos-fetch"},
        )

    def kline(self, params: Mapping[str, str | int]) -> tuple[str, dict]:
        """(url, response) of `GET /v5/market/kline?params` with `retCode` 0, after retries
        (see the module docstring for which failures are retried and the errors raised)."""
        url = f"{self.base_url}/v5/market/kline?{urlencode(params)}"
        failure = _Retry("no try made")
        for attempt in range(1, self.http.attempts + 1):
            got = self._once(url)
            if isinstance(got, dict):
                return url, got
            failure = got
            if attempt == self.http.attempts:
                break
            hinted = got.wait is not None
            wait = min(self.http.max_wait_s, got.wait or 0.0) if hinted else backoff(attempt, self.http, self.rng)
            self.retries += 1
            self.on_retry(f"{got.reason}; try {attempt + 1}/{self.http.attempts} in {wait:.2f} s")
            self.sleep(wait)
        raise StorageError(
            f"gave up on {url} after {self.http.attempts} tries: {failure.reason}",
            fix="check the network and --base-url, wait a little, then rerun the same command: it resumes from "
                "the pages already fetched (more tries: --attempts)",
        )

    def _once(self, url: str) -> dict | _Retry:
        import urllib3

        try:
            response = self._pool.request("GET", url, preload_content=True)
        except urllib3.exceptions.HTTPError as e:  # connection refused or reset, timeout, truncated body
            return _Retry(f"connection failed or body cut short ({type(e).__name__}: {e})")
        status, body = response.status, response.data
        hint = server_wait(response.headers, time.time())
        if status == 429:
            return _Retry("HTTP 429 (rate limited)", hint)
        if status >= 500:
            return _Retry(f"HTTP {status}", hint)
        if status != 200:
            why = {403: "Bybit refuses this IP (too many requests lately, or a region it does not serve)",
                   404: "no such endpoint: is --base-url Bybit's API root?"}.get(status, "unexpected status")
            raise StorageError(f"HTTP {status} from {url}: {why}; body: {body[:200]!r}",
                               fix="check --base-url (default https://api.bybit.com) and the network, then rerun")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return _Retry(f"the body is truncated or not JSON ({len(body)} bytes: {e})")
        if not isinstance(doc, dict) or not isinstance(doc.get("retCode"), int):
            return _Retry(f"the body is not a Bybit response (no retCode): {body[:120]!r}")
        code, message = doc["retCode"], doc.get("retMsg", "")
        if code in TRANSIENT_CODES:
            return _Retry(f"retCode {code} ({message})", hint if code in RATE_LIMIT_CODES else None)
        if code != 0:
            raise InvalidInput(
                f"Bybit refused the request: retCode {code}, retMsg {message!r}", rule="bybit-error", file=url,
                fix="check --symbol, --category and --interval (Bybit's symbols look like BTCUSDT; intervals "
                    "1 3 5 15 30 60 120 240 360 720 D W M)",
            )
        return doc
