"""Strate III quality: are the flow's futures better than the baselines?

    python benchmarks/futures.py [--data embedded|panel] [--preset small] [--workspace DIR] [--set KIND.a.b=v]

Runs `chaos run --until cfm` (ingest, tokenize, train-jepa, train-cfm) on the embedded data or
on a yfinance-style daily index panel with a volatility regime shift (`tests/support/panels.py`:
the later years three times calmer than the training years), then prints one JSON object:
per period (validation, test) and horizon, the CRPS of the cumulative return and the 50% /
90% coverage of every forecast, the flow's CRPS skill against each baseline with its
block-bootstrap interval, and whether the issue's targets are met (CRPS at most the best
baseline's, or within `crps_tolerance` of it; coverage within `coverage_tolerance` points).
Also the seconds each stage took and this machine's fp32 matmul peak, measured in the run.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and benchmarks/tokenize.py would shadow the
# standard library's `tokenize`: put the repository root there instead.
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[0] = ROOT

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from strates.cfm import artifact  # noqa: E402
from strates.core.perf import matmul_peak  # noqa: E402
from strates.core.workspace import Workspace  # noqa: E402
from strates.data.config import Config as IngestConfig  # noqa: E402
from strates.pipeline import run  # noqa: E402

# the targets: on the embedded data CFM CRPS <= the best baseline and coverage within
# 5 points; on the daily panel CRPS within 2% of the best baseline and coverage within 7
TARGETS = {"embedded": (0.0, 0.05), "panel": (0.02, 0.07)}


def summary(c: artifact.Cfm, *, crps_tolerance: float, coverage_tolerance: float) -> dict:
    out: dict = {"spread": c.metrics.spread, "condition_used": c.metrics.condition_used, "periods": {}}
    met = True
    for name in ("validation", "test"):
        p = c.metrics.period(name)
        if p is None:
            continue
        rows = {}
        for h in [s.horizon for s in p.forecasts["cfm"].horizons]:
            scores = {key: p.forecasts[key].at(h) for key, _ in artifact.FORECASTS if key in p.forecasts}
            best = min(scores[b].crps for b in artifact.BASELINES)
            cfm = scores["cfm"]
            ok_crps = cfm.crps <= best * (1 + crps_tolerance)
            ok_cov = abs(cfm.cov50 - 0.5) <= coverage_tolerance and abs(cfm.cov90 - 0.9) <= coverage_tolerance
            met = met and ok_crps and ok_cov
            rows[f"h{h}"] = {
                "crps": {k: round(s.crps, 7) for k, s in scores.items()},
                "cov50": {k: round(s.cov50, 3) for k, s in scores.items()},
                "cov90": {k: round(s.cov90, 3) for k, s in scores.items()},
                "skill": {b: [round(s.value, 4), round(s.lo, 4), round(s.hi, 4)] for b, s in p.skill[f"h{h}"].items()},
                "cfm_vs_best_baseline": round(cfm.crps / best - 1, 4), "crps_met": ok_crps, "coverage_met": ok_cov,
            }
        out["periods"][name] = {"start": p.start.isoformat(), "end": p.end.isoformat(), "states": p.states,
                                "futures_per_state": p.futures_per_state, "horizons": rows}
    out["met"] = met
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(TARGETS), default="embedded")
    parser.add_argument("--preset", default=None, help="preset of every stage (default: each stage's own)")
    parser.add_argument("--workspace", default=None, help="workspace folder (default: a temporary one)")
    parser.add_argument("--set", dest="set_", action="append", default=[], help="KIND.section.field=value")
    args = parser.parse_args()

    peak = matmul_peak(3)
    folder = Path(args.workspace or tempfile.mkdtemp(prefix="chaos-futures-"))
    if args.data == "panel":
        sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
        from panels import write_daily_panel

        ingest = IngestConfig(sources=tuple(str(p) for p in write_daily_panel(folder / "panel")))
    else:
        ingest = IngestConfig()
    overrides: dict[str, list[str]] = {}
    for s in args.set_:
        kind, _, rest = s.partition(".")
        overrides.setdefault(kind, []).append(rest)
    ws = Workspace(folder / "ws")
    steps = run(ws, presets=[args.preset] if args.preset else None, ingest_config=ingest, overrides=overrides,
                until="cfm")
    c = artifact.load(ws, steps[-1].ref)
    crps_tol, cov_tol = TARGETS[args.data]
    print(json.dumps({
        "benchmark": "futures", "data": args.data, "preset": args.preset or "default", "cfm": c.ref,
        "targets": {"crps_tolerance": crps_tol, "coverage_tolerance": cov_tol},
        **summary(c, crps_tolerance=crps_tol, coverage_tolerance=cov_tol),
        "seconds": {s.stage: s.seconds for s in steps}, "matmul_peak_gflops": peak["gflops"],
        "workspace": str(folder),
    }, indent=2))


if __name__ == "__main__":
    main()
