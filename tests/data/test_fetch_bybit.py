"""`chaos fetch bybit` against a real HTTP server on 127.0.0.1 that answers like Bybit's v5
kline endpoint, from a deterministic synthetic series, with scripted faults."""

from __future__ import annotations

import http.server
import json
import math
import pathlib
import socket
import threading
import time
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core.errors import ConfigError, InvalidInput, StorageError
from strates.core.progress import NullReporter
from strates.data.bybit_client import Http, backoff, server_wait
from strates.data.fetch_bybit import Request, fetch, grid_floor, iso, parse_time
from strates.data.sources import SourceOptions, read_bars

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
FAST = Http(attempts=3, backoff_s=0.001, max_wait_s=0.01, connect_s=2, read_s=2)
FAST_ENV = {"CHAOS_FETCH_ATTEMPTS": "3", "CHAOS_FETCH_BACKOFF": "0.001"}


def kline(ts: int, step: int) -> list[str]:
    """The synthetic kline starting at `ts`: a slow sine, high/low around open/close."""
    i = ts // step
    o, c = 100 + 10 * math.sin(i / 7), 100 + 10 * math.sin((i + 1) / 7)
    volume = 10 + i % 5
    return [str(ts), f"{o:.4f}", f"{max(o, c) + 0.5:.4f}", f"{min(o, c) - 0.5:.4f}", f"{c:.4f}", f"{volume:.3f}",
            f"{volume * c:.4f}"]


class FakeBybit(http.server.ThreadingHTTPServer):
    """`GET /v5/market/kline` over klines of BTCUSDT from `listed` to `latest` (ms): the
    latest `limit` klines in [start, end], newest first. `script` answers request k with
    its k-th entry, then `then` for every later one: "ok", "429" (Retry-After: 0), "503",
    "404", "truncated" (half the body, Content-Length of all of it), "garbage" (not JSON),
    "retcode:N" (HTTP 200, retCode N; for 10006 with X-Bapi-Limit-Reset-Timestamp = now),
    "corrupt" (an ok page passed through `corrupt(doc)`). `requests` keeps every query."""

    def __init__(self, *, listed: int = T0 - 1000 * HOUR, latest: int = T0 + 10_000 * HOUR,
                 script: tuple[str, ...] = (), then: str = "ok", corrupt=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.listed, self.latest, self.script, self.then, self.corrupt = listed, latest, list(script), then, corrupt
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def page(self, q: dict[str, str]) -> dict:
        step = 86_400_000 if q["interval"] == "D" else int(q["interval"]) * 60_000
        start, end, limit = int(q["start"]), int(q["end"]), int(q["limit"])
        lo, hi = max(-(-start // step) * step, self.listed), min(end, self.latest)
        newest = hi - hi % step
        starts = range(newest, lo - 1, -step)[:limit]
        return {"retCode": 0, "retMsg": "OK",
                "result": {"category": q["category"], "symbol": q["symbol"], "list": [kline(t, step) for t in starts]},
                "retExtInfo": {}, "time": 1_709_251_200_000}

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeBybit

    def log_message(self, format, *args):  # quiet
        pass

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None):
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        srv = self.server
        with srv.lock:
            srv.requests.append(q)
            fault = srv.script.pop(0) if srv.script else srv.then
        if url.path != "/v5/market/kline" or fault == "404":
            return self.send(404, b"not found")
        if fault == "429":
            return self.send(429, b'{"retCode":10006}', {"Retry-After": "0"})
        if fault == "503":
            return self.send(503, b"<html>busy</html>")
        if fault == "garbage":
            return self.send(200, b"<html>cloudfront</html>")
        if fault.startswith("retcode:"):
            code = int(fault.split(":")[1])
            message = {10001: "params error: Symbol Is Invalid", 10006: "Too many visits!"}.get(code, "error")
            headers = {"X-Bapi-Limit-Reset-Timestamp": str(int(time.time() * 1000))} if code == 10006 else {}
            body = {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": 0}
            return self.send(200, json.dumps(body).encode(), headers)
        doc = srv.page(q)
        if fault == "corrupt" and srv.corrupt is not None:
            srv.corrupt(doc)
        body = json.dumps(doc).encode()
        if fault == "truncated":
            return self.send(200, body[: len(body) // 2], length=len(body))
        return self.send(200, body)


runner = CliRunner()


def chaos(*args: str, url: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["fetch", "bybit", *args], env={**FAST_ENV, "CHAOS_BYBIT_URL": url, **(env or {})},
                         catch_exceptions=False)


def ends(server: FakeBybit) -> list[int]:
    return [int(q["end"]) for q in server.requests]


def klines_in(path: pathlib.Path) -> list[int]:
    return [int(k[0]) for page in json.loads(path.read_text()) for k in page["result"]["list"]]


def hidden(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


TEN_DAYS = Request(symbol="BTCUSDT", interval="60", start_ms=T0, end_ms=T0 + 240 * HOUR)


def test_pages_backwards_newest_first_into_one_oldest_first_file(tmp_path):
    out = tmp_path / "btc.json"
    with FakeBybit() as server:
        result = fetch(TEN_DAYS, out, base_url=server.url, limit=50, http=FAST)
    # each page asks for the oldest kline so far - 1 ms, until the start is covered
    assert ends(server) == [T0 + 240 * HOUR - 1, *(T0 + k * HOUR - 1 for k in (190, 140, 90, 40))]
    assert all(q["start"] == str(T0) and q["limit"] == "50" and q["category"] == "linear" for q in server.requests)
    assert klines_in(out) == [T0 + k * HOUR for k in range(240)]
    assert [len(p["result"]["list"]) for p in json.loads(out.read_text())] == [40, 50, 50, 50, 50]
    assert (result.klines, result.pages, result.requests, result.resumed, result.retries) == (240, 5, 5, 0, 0)
    assert (result.first_ms, result.last_ms, result.notes) == (T0, T0 + 239 * HOUR, ())
    assert hidden(tmp_path) == []  # no progress or partial file left
    # chaos ingest's reader takes it as it is, in order, every value kept
    frame, notes = read_bars(str(out), SourceOptions())
    assert frame.height == 240 and frame["asset"].unique().to_list() == ["BTCUSDT"]
    assert frame["ts"].is_sorted() and not [n for n in notes if "sorted" in n]
    assert frame["close"][0] == pytest.approx(float(kline(T0, HOUR)[4]))


def test_stops_on_an_empty_page_and_says_the_symbol_starts_later(tmp_path):
    reporter = NullReporter()
    with FakeBybit(listed=T0 + 100 * HOUR) as server:
        result = fetch(TEN_DAYS, tmp_path / "b.json", base_url=server.url, limit=100, http=FAST, reporter=reporter)
    assert ends(server) == [T0 + 240 * HOUR - 1, T0 + 140 * HOUR - 1, T0 + 100 * HOUR - 1]  # the last one is empty
    assert (result.klines, result.first_ms) == (140, T0 + 100 * HOUR)
    assert any("after --start" in n for n in result.notes) and result.notes[0] in reporter.messages


def test_no_klines_at_all_is_exit_2_and_leaves_nothing(tmp_path):
    with FakeBybit(listed=T0 + 500 * HOUR) as server, pytest.raises(InvalidInput) as err:
        fetch(TEN_DAYS, tmp_path / "b.json", base_url=server.url, http=FAST)
    assert err.value.rule == "no-klines" and "BTCUSDT" in err.value.message and len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_retries_429_503_truncated_and_garbage_then_succeeds(tmp_path):
    waits: list[float] = []
    reporter = NullReporter()
    with FakeBybit(script=("429", "503", "truncated", "garbage")) as server:
        result = fetch(TEN_DAYS, tmp_path / "b.json", base_url=server.url, reporter=reporter, sleep=waits.append,
                       http=Http(attempts=5, backoff_s=0.001, max_wait_s=1))
    assert len(server.requests) == 5 and result.retries == 4 and result.klines == 240
    assert waits[0] == 0  # Retry-After: 0 is honoured
    assert all(0.001 * 2 ** k <= w < 0.001 * 2 ** (k + 1) for k, w in enumerate(waits[1:], start=1))  # back-off
    said = "\n".join(reporter.messages)
    assert "HTTP 429" in said and "HTTP 503" in said and "cut short" in said and "not JSON" in said


def test_server_wait_headers_and_backoff():
    now = 1_700_000_000.0
    assert server_wait({"Retry-After": "3"}, now) == 3
    assert server_wait({"Retry-After": "Tue, 14 Nov 2023 22:13:25 GMT"}, now) == pytest.approx(5.0)
    assert server_wait({"X-Bapi-Limit-Reset-Timestamp": str(int(now * 1000) + 1500)}, now) == pytest.approx(1.5)
    assert server_wait({"X-Bapi-Limit-Reset-Timestamp": "1"}, now) == 0  # already reset
    assert server_wait({}, now) is None and server_wait({"Retry-After": "soon"}, now) is None
    import random

    rng = random.Random(0)
    http = Http(backoff_s=1, max_wait_s=5)
    assert [1 <= backoff(1, http, rng) < 2, 4 <= backoff(3, http, rng) <= 5, backoff(9, http, rng)] == [True, True, 5]


def test_persistent_failure_exit_5_nothing_written_then_resume(tmp_path):
    out = tmp_path / "btc.json"
    args = ("--symbol", "BTCUSDT", "--interval", "60", "--start", "2024-01-01", "--end", "2024-01-11",
            "--limit", "50", "--out", str(out))
    with FakeBybit(script=("ok", "ok"), then="503") as broken:
        res = chaos(*args, url=broken.url)
    assert res.exit_code == 5, res.stderr
    assert "gave up on http://127.0.0.1" in res.stderr and "HTTP 503" in res.stderr and "end=" in res.stderr
    assert len(broken.requests) == 2 + 3  # two pages, then 3 tries of the third
    assert not out.exists()
    progress = [n for n in hidden(tmp_path) if n.endswith(".progress")]
    assert len(progress) == 1 and not [n for n in hidden(tmp_path) if n.endswith(".partial")]
    with (tmp_path / progress[0]).open("a") as f:
        f.write('{"end": 12, "respo')  # a line torn by a crash mid-write is cut off
    with FakeBybit() as healthy:
        res = chaos(*args, "--json", url=healthy.url)
    assert res.exit_code == 0, res.stderr
    assert ends(healthy) == [T0 + 140 * HOUR - 1, T0 + 90 * HOUR - 1, T0 + 40 * HOUR - 1]  # not the first two again
    summary = json.loads(res.stdout)["fetch"]
    assert (summary["resumed_pages"], summary["pages"], summary["requests"], summary["klines"]) == (2, 5, 3, 240)
    assert "resuming from" in res.stderr and hidden(tmp_path) == []
    # the same file as an uninterrupted fetch
    with FakeBybit() as again:
        fetch(TEN_DAYS, tmp_path / "fresh.json", base_url=again.url, limit=50, http=FAST)
    assert out.read_text() == (tmp_path / "fresh.json").read_text()


def test_another_request_never_reads_a_progress_file(tmp_path):
    out = tmp_path / "btc.json"
    with FakeBybit(script=("ok",), then="503") as broken, pytest.raises(StorageError):
        fetch(TEN_DAYS, out, base_url=broken.url, limit=50, http=FAST)
    other = Request(symbol="BTCUSDT", interval="60", start_ms=T0, end_ms=T0 + 100 * HOUR)
    with FakeBybit() as healthy:
        result = fetch(other, out, base_url=healthy.url, limit=50, http=FAST)
    assert ends(healthy) == [T0 + 100 * HOUR - 1, T0 + 50 * HOUR - 1] and result.resumed == 0
    assert klines_in(out) == [T0 + k * HOUR for k in range(100)]
    assert len(hidden(tmp_path)) == 1  # the first request's progress, kept for its own rerun


def corrupt_first(index: int, value: str):
    def corrupt(doc):
        doc["result"]["list"][0][index] = value
    return corrupt


@pytest.mark.parametrize(("corrupt", "rule", "says"), [
    (corrupt_first(2, "1.0"), "bybit-high", "high 1.0 is below max(open"),
    (corrupt_first(3, "1000"), "bybit-low", "low 1000 is above min(open"),
    (corrupt_first(0, str(T0 + 239 * HOUR + 1)), "bybit-grid", "not on the grid of interval 60"),
    (corrupt_first(0, str(T0 + 300 * HOUR)), "bybit-range", "outside the request"),
    (corrupt_first(5, "lots"), "bybit-number", "not a number"),
    (corrupt_first(5, "nan"), "bybit-number", "not finite"),
    (lambda doc: doc["result"]["list"][0].pop(), "bybit-kline", "expected 7 strings"),
    (lambda doc: doc["result"]["list"][0].__setitem__(1, 100.0), "bybit-kline", "expected 7 strings"),
    (lambda doc: doc["result"].update(symbol="ETHUSDT"), "bybit-symbol", "'ETHUSDT', asked for 'BTCUSDT'"),
    (lambda doc: doc.pop("result"), "bybit-page", "no result.list"),
])
def test_a_bad_page_names_the_page_and_the_rule(tmp_path, corrupt, rule, says):
    with FakeBybit(script=("ok", "corrupt"), corrupt=corrupt) as server, pytest.raises(InvalidInput) as err:
        fetch(TEN_DAYS, tmp_path / "b.json", base_url=server.url, limit=100, http=FAST)
    assert err.value.rule == rule and says in err.value.message
    assert f"page 2 (start {iso(T0)}, end {iso(T0 + 140 * HOUR - 1)})" in err.value.message
    assert err.value.file and err.value.file.startswith(server.url)
    assert not (tmp_path / "b.json").exists()


def test_bad_request_retcode_exit_2_not_retried(tmp_path):
    with FakeBybit(then="retcode:10001") as server:
        res = chaos("--symbol", "NOPE", "--interval", "60", "--start", "2024-01-01", "--end", "2024-01-02",
                    "--out", str(tmp_path / "x.json"), "--json", url=server.url)
    assert res.exit_code == 2 and len(server.requests) == 1
    assert "retCode 10001" in res.stderr and "Symbol Is Invalid" in res.stderr
    error = json.loads(res.stdout)["error"]
    assert error["rule"] == "bybit-error" and error["exit_code"] == 2
    assert list(tmp_path.iterdir()) == []  # not even a progress file


def test_rate_limit_retcode_retried_then_exit_5(tmp_path):
    with FakeBybit(then="retcode:10006") as server:
        res = chaos("--symbol", "BTCUSDT", "--interval", "60", "--start", "2024-01-01", "--end", "2024-01-02",
                    "--out", str(tmp_path / "x.json"), url=server.url)
    assert res.exit_code == 5 and len(server.requests) == 3
    assert "retCode 10006 (Too many visits!)" in res.stderr and "after 3 tries" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_not_found_and_connection_refused_exit_5(tmp_path):
    with FakeBybit(then="404") as server:
        res = chaos("--symbol", "BTCUSDT", "--interval", "D", "--start", "2024-01-01", "--end", "2024-02-01",
                    "--out", str(tmp_path / "x.json"), url=server.url)
    assert res.exit_code == 5 and len(server.requests) == 1 and "HTTP 404" in res.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = chaos("--symbol", "BTCUSDT", "--interval", "D", "--start", "2024-01-01", "--end", "2024-02-01",
                "--out", str(tmp_path / "x.json"), url=f"http://127.0.0.1:{port}")
    assert res.exit_code == 5 and f"gave up on http://127.0.0.1:{port}/v5/market/kline?" in res.stderr
    assert "connection failed" in res.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "says"), [
    (("--interval", "7"), "must be one of 1, 3, 5, 15, 30, 60, 120, 240, 360, 720, D, W, M; got '7'"),
    (("--start", "2024-02-01"), "must be before --end"),
    (("--symbol", " "), "--symbol is empty"),
    (("--symbol", "BTC/USDT"), "not a Bybit symbol"),
    (("--category", "option"), "spot, linear, inverse"),
    (("--limit", "1001"), "--limit must be in 1..1000"),
    (("--end", "soon"), "cannot read end 'soon'"),
    (("--base-url", "ftp://x"), "not an http(s) URL"),
    (("--attempts", "0"), "--attempts must be at least 1"),
])
def test_bad_options_exit_2(tmp_path, args, says):
    base = {"--symbol": "BTCUSDT", "--interval": "60", "--start": "2024-01-01", "--end": "2024-02-01",
            "--out": str(tmp_path / "x.json")}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    res = chaos(*[x for kv in base.items() for x in kv], url="http://127.0.0.1:9")
    assert res.exit_code == 2 and says in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_times_grid_and_names():
    assert parse_time("2024-01-01", "start") == T0 == parse_time(str(T0), "start")
    assert parse_time("2024-01-01T01:00:00+01:00", "start") == T0
    for text in ("yesterday", "2024", "-5"):
        with pytest.raises(ConfigError):
            parse_time(text, "start")
    assert grid_floor(T0 + 5 * HOUR + 7, "240") == T0 + 4 * HOUR
    assert grid_floor(T0 + 3 * 86_400_000, "W") == T0  # 2024-01-01 was a Monday
    assert grid_floor(parse_time("2024-02-29T13:00:00Z", "x"), "M") == parse_time("2024-02-01", "x")
    assert Request(symbol="btcusdt", interval="D", start_ms=T0, end_ms=T0 + 86_400_000).symbol == "BTCUSDT"
    assert TEN_DAYS.default_name() == "bybit-BTCUSDT-60-2024-01-01-2024-01-11.json"
    assert Request(symbol="X", interval="1", start_ms=T0 + 90_000, end_ms=T0 + HOUR).default_name() == \
        "bybit-X-1-2024-01-01T000130Z-2024-01-01T010000Z.json"
    assert TEN_DAYS.key() != Request(symbol="BTCUSDT", interval="60", start_ms=T0, end_ms=T0 + HOUR).key()


def test_default_path_text_output_and_ingest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with FakeBybit() as server:
        res = chaos("--symbol", "BTCUSDT", "--interval", "60", "--start", "2024-01-01", "--end", "2024-01-11",
                    url=server.url)
        assert res.exit_code == 0, res.stderr
        name = "bybit-BTCUSDT-60-2024-01-01-2024-01-11.json"
        assert "wrote 240 klines of BTCUSDT 60" in res.stdout and f"next: chaos ingest --source {tmp_path / name}" \
            in res.stdout
        assert len(klines_in(tmp_path / name)) == 240
        res = chaos("--symbol", "BTCUSDT", "--interval", "60", "--start", "2024-01-01", "--end", "2024-01-11",
                    "--ingest", "--json", "--workspace", str(tmp_path / "ws"), url=server.url)
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["ok"] is True and payload["fetch"]["klines"] == 240 and payload["uri"].startswith(str(tmp_path))
    assert payload["ref"].startswith("dataset/") and payload["id"]
    assert (payload["fetch"]["first"], payload["fetch"]["last"]) == ("2024-01-01T00:00:00Z", "2024-01-10T23:00:00Z")
