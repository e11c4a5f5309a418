"""`chaos fetch bybit`: klines from Bybit's public v5 REST API into a file that `chaos ingest
--source FILE` reads (`strates.data.bybit_format`).

Endpoint: `GET {base}/v5/market/kline?category=&symbol=&interval=&start=&end=&limit=`, with
`start`/`end` in epoch ms (both inclusive) and `limit` in 1..1000. A page holds the latest
`limit` klines starting at or before `end`, newest first: `result.list` = [[start ms, open,
high, low, close, volume, turnover], ...], every value a string.

A fetch covers the klines *starting* in [start, end): the first page asks for end − 1 ms,
each next one for the oldest kline so far − 1 ms, until a page reaches `start`, comes back
empty (nothing older: the symbol was listed later) or brings nothing new.

Files, beside the output `OUT` (all in its folder, so the final rename is atomic):

- `.OUT.<key>.progress`: JSON lines; the request first, then one line per page fetched,
  `{"end": ms asked, "response": ...}`, appended and fsync'd as each page arrives. A fetch
  that stops (network failure, Ctrl-C) keeps it; rerunning the same request resumes after
  its last page. `<key>` hashes (category, symbol, interval, start, end), so another request
  never reads it; the base URL and the page size are not part of it.
- `OUT`: a JSON array of the responses, oldest page first, each `result.list` re-ordered
  oldest first, without duplicates or klines outside [start, end). Written to
  `.OUT.<key>.partial` and renamed, then the progress file is removed.

Errors: `ConfigError` (exit 2) for a bad request; `InvalidInput` (exit 2) when Bybit answers
`retCode != 0` for a request it will never accept (rule `bybit-error`), or a page breaks a
rule (rules `bybit-*`, naming the page's start and end); `StorageError` (exit 5) when the
network, the server or its rate limit still fails after `Http.attempts` tries, or the output
cannot be written. Retries, timeouts and back-off live in `strates.data.bybit_client`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable

from strates.core.errors import ConfigError, InvalidInput, StorageError
from strates.core.progress import NullReporter, Reporter
from strates.data.bybit_client import Client, Http

INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
CATEGORIES = ("spot", "linear", "inverse")
MAX_LIMIT = 1000

_DAY = 86_400_000
_MONDAY = 4 * _DAY  # 1970-01-05, the first Monday: weekly klines open on Monday 00:00 UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9_-]*")


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (`2024-01-01T00:00:00Z`; milliseconds when not 0)."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return t.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def parse_time(text: str, field: str) -> int:
    """`--start`/`--end` as epoch ms: an ISO date or date-time (UTC unless it has an offset),
    or epoch milliseconds (10 digits or more: `2024` is not read as 2 seconds after 1970).
    Anything else is a ConfigError (exit 2)."""
    text = text.strip()
    if text.isdigit() and len(text) >= 10:
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"cannot read {field} {text!r} as a date, a time or epoch milliseconds", field=field,
                          fix="write it as ISO 8601 (2024-01-01, 2024-01-31T14:30:00Z) or epoch ms") from None
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return (t - _EPOCH) // dt.timedelta(milliseconds=1)


def grid_floor(ms: int, interval: str) -> int:
    """The start of the `interval` kline holding `ms`: minutes from the epoch, days at 00:00
    UTC, weeks on Monday 00:00 UTC, months on the 1st at 00:00 UTC."""
    if interval == "M":
        t = _EPOCH + dt.timedelta(milliseconds=ms)
        return (dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)
    offset = _MONDAY if interval == "W" else 0
    return ms - (ms - offset) % _step(interval)


def expected_klines(request: Request) -> int:
    """How many klines start in [start, end) (or hold `start`): the progress bar's total."""
    first, last = grid_floor(request.start_ms, request.interval), request.end_ms - 1
    if request.interval == "M":
        a, b = (_EPOCH + dt.timedelta(milliseconds=m) for m in (first, last))
        return (b.year - a.year) * 12 + b.month - a.month + 1
    return (last - first) // _step(request.interval) + 1


def _step(interval: str) -> int:
    """The length of a kline in ms (not for M)."""
    return {"D": _DAY, "W": 7 * _DAY}.get(interval) or int(interval) * 60_000


@dataclasses.dataclass(frozen=True)
class Request:
    """What to fetch: klines of `symbol` (upper-cased) in `category` at `interval` (one of
    INTERVALS: minutes, or D/W/M) starting in [start_ms, end_ms) (epoch ms). Invalid values
    raise ConfigError (exit 2) naming the option and the valid values."""

    symbol: str
    interval: str
    start_ms: int
    end_ms: int
    category: str = "linear"

    def __post_init__(self) -> None:
        symbol = self.symbol.strip().upper()
        object.__setattr__(self, "symbol", symbol)
        if not symbol:
            raise ConfigError("--symbol is empty", fix="name a Bybit symbol, e.g. --symbol BTCUSDT", field="symbol")
        if not _SYMBOL.fullmatch(symbol):
            raise ConfigError(f"--symbol {symbol!r} is not a Bybit symbol (letters, digits, '-' and '_')",
                              fix="name a Bybit symbol, e.g. --symbol BTCUSDT", field="symbol")
        if self.interval not in INTERVALS:
            raise ConfigError(f"--interval must be one of {', '.join(INTERVALS)}; got {self.interval!r}",
                              fix=f"choose one of: {', '.join(INTERVALS)} (minutes, or D, W, M)", field="interval")
        if self.category not in CATEGORIES:
            raise ConfigError(f"--category must be one of {', '.join(CATEGORIES)}; got {self.category!r}",
                              fix=f"choose one of: {', '.join(CATEGORIES)}", field="category")
        if self.start_ms < 0 or self.start_ms >= self.end_ms:
            raise ConfigError(f"--start {iso(max(self.start_ms, 0))} must be before --end {iso(max(self.end_ms, 0))}"
                              " (and not before 1970)", fix="give --start earlier than --end", field="start")

    def identity(self) -> dict:
        """What a progress file belongs to (not the base URL nor the page size)."""
        return {"category": self.category, "symbol": self.symbol, "interval": self.interval,
                "start": self.start_ms, "end": self.end_ms}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]

    def default_name(self) -> str:
        """`bybit-{symbol}-{interval}-{start}-{end}.json`, times as dates when at midnight."""
        def tag(ms: int) -> str:
            return iso(ms)[:10] if ms % _DAY == 0 else iso(ms).replace(":", "").replace(".", "")
        return f"bybit-{self.symbol}-{self.interval}-{tag(self.start_ms)}-{tag(self.end_ms)}.json"


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What `fetch` wrote. `klines`: rows in the file; `pages`: responses in it, of which
    `resumed` came from an earlier run's progress file; `requests`: pages asked for in this
    run and `retries`: the tries among them that failed and were repeated; `first_ms`/
    `last_ms`: the oldest and newest kline start (epoch ms); `notes`: what is worth saying."""

    path: str
    request: Request
    klines: int
    pages: int
    resumed: int
    requests: int
    retries: int
    first_ms: int
    last_ms: int
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"path": self.path, **self.request.identity(), "start": iso(self.request.start_ms),
                "end": iso(self.request.end_ms), "klines": self.klines, "pages": self.pages,
                "resumed_pages": self.resumed, "requests": self.requests, "retries": self.retries,
                "first": iso(self.first_ms), "last": iso(self.last_ms), "notes": list(self.notes)}


def check_page(doc: dict, request: Request, *, end_ms: int, page: int, url: str) -> list[list[str]]:
    """The klines of one response, oldest first and without duplicates, after checking each:
    7 strings [start ms, open, high, low, close, volume, turnover] that parse as finite
    numbers, high >= max(open, close), low <= min(open, close), a start on the interval's
    grid inside the request ([grid_floor(start), end_ms]), and `result.symbol` the symbol
    asked for. The first broken rule raises InvalidInput (exit 2) naming the page (its
    start and end) and the rule: `bybit-page`, `bybit-symbol`, `bybit-kline`,
    `bybit-number`, `bybit-high`, `bybit-low`, `bybit-grid`, `bybit-range`."""
    where = f"page {page} (start {iso(request.start_ms)}, end {iso(end_ms)})"

    def bad(rule: str, message: str) -> InvalidInput:
        return InvalidInput(f"{where}: {message}", rule=rule, file=url,
                            fix="this is what the server sent: rerun later, and check --base-url points at Bybit's "
                                "v5 API (https://api.bybit.com)")

    result = doc.get("result")
    items = result.get("list") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not isinstance(items, list):
        raise bad("bybit-page", "the response has no result.list")
    if (items or result.get("symbol") is not None) and result.get("symbol") != request.symbol:
        raise bad("bybit-symbol", f"result.symbol is {result.get('symbol')!r}, asked for {request.symbol!r}")
    lowest = grid_floor(request.start_ms, request.interval)
    rows: dict[int, list[str]] = {}
    for i, item in enumerate(items, start=1):
        if not (isinstance(item, list) and len(item) == 7 and all(isinstance(x, str) for x in item)):
            raise bad("bybit-kline", f"kline {i} is {json.dumps(item)[:80]}, expected 7 strings "
                                     "[start ms, open, high, low, close, volume, turnover]")
        try:
            ts, values = int(item[0]), [float(x) for x in item[1:]]
        except ValueError:
            raise bad("bybit-number", f"kline {i} {item} holds a value that is not a number") from None
        o, h, lo, c = values[:4]
        if not all(math.isfinite(v) for v in values):
            raise bad("bybit-number", f"kline {i} ({iso(ts)}) holds a value that is not finite: {item}")
        if h < max(o, c):
            raise bad("bybit-high", f"kline {i} ({iso(ts)}): high {item[2]} is below max(open {item[1]}, "
                                    f"close {item[4]})")
        if lo > min(o, c):
            raise bad("bybit-low", f"kline {i} ({iso(ts)}): low {item[3]} is above min(open {item[1]}, "
                                   f"close {item[4]})")
        if grid_floor(ts, request.interval) != ts:
            raise bad("bybit-grid", f"kline {i} starts at {iso(ts)}, not on the grid of interval {request.interval}")
        if not lowest <= ts <= end_ms:
            raise bad("bybit-range", f"kline {i} starts at {iso(ts)}, outside the request")
        rows.setdefault(ts, item)
    return [rows[ts] for ts in sorted(rows)]


def _read_progress(path: str, request: Request, rep: Reporter) -> list[dict]:
    """The pages of an earlier run of `request`, or [] (no file, another request's, or
    unreadable: then it starts over). A torn last line (a crash mid-write) is cut off."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if header != {"request": request.identity()}:
        rep.info(f"ignoring {path}: it is not a progress file of this request; starting over")
        return []
    pages, keep = [], len(lines[0]) + 1
    for line in lines[1:]:
        try:
            page = json.loads(line)
            if any(int(k[0]) < 0 for k in page["response"]["result"]["list"]):  # a page as `_pages` wrote it
                break
        except (ValueError, TypeError, KeyError, IndexError):
            break
        pages.append(page)
        keep += len(line) + 1
    with open(path, "r+b") as f:
        f.truncate(min(keep, os.path.getsize(path)))
    return pages


def _write_atomic(path: str, tmp: str, pages: list[dict]) -> None:
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("[\n" + ",\n".join(json.dumps(p["response"], separators=(",", ":")) for p in pages) + "\n]\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e}", fix="check the folder exists and is writable, or give "
                           "--out elsewhere; rerunning resumes from the progress file") from None


def _pages(request: Request, client: Client, pages: list[dict], seen: set[int], end: int, *, limit: int,
           progress: str, rep: Reporter) -> int:
    """Fetch pages backwards from `end` (ms, inclusive) to `request.start_ms`, appending each
    page with new klines to `pages` and to the progress file, and their starts to `seen`.
    Returns the number of pages asked for."""
    requests = 0
    with rep.task(f"fetching {request.symbol} {request.interval} from Bybit", total=expected_klines(request)) as up:
        up(len(seen), status=f"resumed {len(pages)} pages" if pages else None)
        while end >= request.start_ms:
            params = {"category": request.category, "symbol": request.symbol, "interval": request.interval,
                      "start": request.start_ms, "end": end, "limit": limit}
            url, doc = client.kline(params)
            requests += 1
            rows = check_page(doc, request, end_ms=end, page=len(pages) + 1, url=url)
            new = [r for r in rows if int(r[0]) not in seen and int(r[0]) >= request.start_ms]
            if new:
                page = {"end": end, "response": {**doc, "result": {**doc["result"], "list": new}}}
                try:
                    with open(progress, "a", encoding="utf-8") as f:
                        f.write(json.dumps(page, separators=(",", ":")) + "\n")
                        f.flush()
                        os.fsync(f.fileno())
                except OSError as e:
                    raise StorageError(f"cannot append to {progress}: {e}", fix="check the disk is not full") from None
                pages.append(page)
                seen.update(int(r[0]) for r in new)
            if not rows or not new:  # nothing older, or the server ignored `end`
                break
            end = int(rows[0][0]) - 1
            up(len(new), status=f"page {len(pages)}, back to {iso(int(rows[0][0]))}")
    return requests


def fetch(
    request: Request,
    out: str | os.PathLike | None = None,
    *,
    base_url: str = "https://api.bybit.com",
    limit: int = MAX_LIMIT,
    http: Http | None = None,
    reporter: Reporter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """Fetch `request` page by page (`limit` klines a page, 1..1000) into `out` (default
    `./{request.default_name()}`), resuming from a progress file an interrupted run of the
    same request left beside it (see the module docstring). Nothing is written at `out`
    unless every page arrived and passed `check_page`. `http`: tries, back-off and timeouts
    (default `Http()`); `sleep(seconds)` waits between tries.

    Raises ConfigError / InvalidInput (exit 2): a bad limit or base URL, Bybit refusing the
    request (`bybit-error`), a bad page (`bybit-*`), or no klines at all in the range
    (`no-klines`); StorageError (exit 5): the network or Bybit still failing after
    `http.attempts` tries, or the output folder not writable (rerun the same command to
    resume)."""
    rep = reporter or NullReporter()
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"--limit must be in 1..{MAX_LIMIT}; got {limit}", field="limit",
                          fix=f"give --limit {MAX_LIMIT} (Bybit's largest page), or fewer")
    client = Client(base_url, http or Http(), sleep=sleep, on_retry=rep.info)
    path = os.path.abspath(os.fspath(out) if out is not None else request.default_name())
    folder, name = os.path.split(path)
    progress = os.path.join(folder, f".{name}.{request.key()}.progress")
    try:
        os.makedirs(folder, exist_ok=True)
        pages = _read_progress(progress, request, rep)
        if not pages:
            with open(progress, "w", encoding="utf-8") as f:
                f.write(json.dumps({"request": request.identity()}) + "\n")
    except OSError as e:
        raise StorageError(f"cannot write the progress file {progress}: {e}",
                           fix="check the folder is writable, or give --out elsewhere") from None
    seen = {int(k[0]) for p in pages for k in p["response"]["result"]["list"]}
    resumed = len(pages)
    if resumed:
        rep.info(f"resuming from {progress}: {resumed} pages, {len(seen)} klines already fetched")
    try:
        requests = _pages(request, client, pages, seen, min(seen, default=request.end_ms) - 1, limit=limit,
                          progress=progress, rep=rep)
    except BaseException:
        if not pages:  # nothing fetched: leave nothing behind
            with contextlib.suppress(OSError):
                os.remove(progress)
        raise
    if not seen:
        os.remove(progress)
        raise InvalidInput(f"Bybit has no {request.category} klines of {request.symbol} at interval "
                           f"{request.interval} starting in [{iso(request.start_ms)}, {iso(request.end_ms)})",
                           rule="no-klines", fix="check the symbol and category, and ask for a range after its "
                           "listing date")
    pages.reverse()  # oldest page first; each page's klines are already oldest first
    _write_atomic(path, os.path.join(folder, f".{name}.{request.key()}.partial"), pages)
    os.remove(progress)
    first, last = min(seen), max(seen)
    notes = []
    if grid_floor(first - 1, request.interval) >= request.start_ms:
        notes.append(f"the first kline starts at {iso(first)}, after --start: Bybit has nothing older "
                     "(listed later?)")
    if last < grid_floor(request.end_ms - 1, request.interval):
        notes.append(f"the last kline starts at {iso(last)}: Bybit has nothing newer before --end")
    for note in notes:
        rep.info(note)
    return FetchResult(path=path, request=request, klines=len(seen), pages=len(pages), resumed=resumed,
                       requests=requests, retries=client.retries, first_ms=first, last_ms=last, notes=tuple(notes))
