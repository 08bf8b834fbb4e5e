"""Benchmark: parse + normalize + metrics on real activity files, against gpxpy, fitdecode and bare expat.

For every file of the corpus (``--corpus DIR`` with a MANIFEST.tsv; default: a shared corpus beside the
checkout when there is one, else the repository's ``tests/data/corpus``), the CPU time (``time.process_time``,
best of ``--repeats`` rounds, each round long enough to time) of:

* ours: ``parse_bytes`` + ``normalize`` + ``compute_metrics``, what the ingest stage does with a file (up to
  the error, for a file that is refused);
* GPX: ``gpxpy.parse`` + its metrics (``get_moving_data``, ``get_uphill_downhill``, ``length_3d``,
  ``get_duration``) on the same text, and bare expat (a parser with no handlers) on the same bytes;
* TCX: bare expat on the same bytes;
* FIT: fitdecode reading every frame (its default settings).

Targets: ours ≥ 8× faster than gpxpy and than fitdecode, and within 3× of bare expat (GPX), in total.

Run from the repository root::

    .venv/bin/python bench/bench_ingest_files.py
    .venv/bin/python bench/bench_ingest_files.py --corpus tests/data/corpus --repeats 9
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
import warnings
import xml.parsers.expat
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import fitdecode  # noqa: E402
import gpxpy  # noqa: E402

from domain.algorithms.metrics import compute_metrics  # noqa: E402
from domain.algorithms.parsing import ParseError, detect_type, normalize, parse_bytes  # noqa: E402

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
REPO_CORPUS = ROOT / "tests" / "data" / "corpus"
#: Each timing round runs the function this long at least, so that small files are timed over many calls.
ROUND_S = 0.05
GPX_TARGET, FIT_TARGET, EXPAT_TARGET = 8.0, 8.0, 3.0


def cpu_time(fn: Callable[[], object], repeats: int) -> float:
    """Best per-call CPU seconds of ``fn`` over ``repeats`` rounds."""
    calls = 1
    while True:  # calls per round: enough for ROUND_S
        start = time.process_time()
        for _ in range(calls):
            fn()
        spent = time.process_time() - start
        if spent >= ROUND_S or calls >= 1 << 16:
            break
        calls = max(calls * 2, int(calls * ROUND_S / max(spent, 1e-6)))
    best = spent / calls
    for _ in range(repeats - 1):
        start = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - start) / calls)
    return best


def ours(data: bytes, kind: str) -> Callable[[], object]:
    def run() -> object:
        try:
            track = normalize(parse_bytes(data, kind))
        except ParseError as exc:
            return exc
        return compute_metrics(track)
    return run


def gpxpy_run(data: bytes) -> Callable[[], object]:
    text = data.decode("utf-8", errors="replace")

    def run() -> object:
        try:
            g = gpxpy.parse(text)
        except Exception as exc:  # gpxpy's own errors on damaged files
            return exc
        return g.get_moving_data(), g.get_uphill_downhill(), g.length_3d(), g.get_duration()
    return run


def expat_run(data: bytes) -> Callable[[], object]:
    def run() -> object:
        parser = xml.parsers.expat.ParserCreate()
        try:
            parser.Parse(data, True)
        except xml.parsers.expat.ExpatError as exc:
            return exc
        return parser
    return run


def fitdecode_run(data: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return sum(1 for _ in fitdecode.FitReader(io.BytesIO(data)))
        except fitdecode.FitError as exc:
            return exc
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="directory with MANIFEST.tsv and gpx/ tcx/ fit/ (see above)")
    ap.add_argument("--repeats", type=int, default=5, help="timing rounds per figure (best is kept)")
    a = ap.parse_args(argv)
    corpus = a.corpus or (SHARED_CORPUS if (SHARED_CORPUS / "MANIFEST.tsv").is_file() else REPO_CORPUS)
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["format"] in ("gpx", "tcx", "fit")]
    print("bench_ingest_files: parse + normalize + metrics per file, CPU time (process_time), best of "
          f"{a.repeats}")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}; nproc {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f}; corpus {corpus}")
    print()
    print(f"{'file':<62} {'kB':>6} {'outcome':>8} {'ours ms':>8} {'ref ms':>8} {'x ref':>6} {'expat ms':>8} "
          f"{'/expat':>6}")
    totals: dict[str, list[float]] = {"gpx": [0.0, 0.0, 0.0], "tcx": [0.0, 0.0, 0.0], "fit": [0.0, 0.0, 0.0]}
    for row in rows:
        path = corpus / row["file"]
        data = path.read_bytes()
        kind = detect_type(path.name, data[:4096])
        outcome = ours(data, kind)()
        mine = cpu_time(ours(data, kind), a.repeats)
        ref = expat = float("nan")
        if row["format"] == "gpx":
            ref = cpu_time(gpxpy_run(data), a.repeats)
        elif row["format"] == "fit":
            ref = cpu_time(fitdecode_run(data), a.repeats)
        if row["format"] in ("gpx", "tcx"):
            expat = cpu_time(expat_run(data), a.repeats)
        t = totals[row["format"]]
        t[0] += mine
        t[1] += 0.0 if ref != ref else ref
        t[2] += 0.0 if expat != expat else expat
        label = "refused" if isinstance(outcome, ParseError) else "ok"
        print(f"{row['file'][:62]:<62} {len(data) / 1000:6.0f} {label:>8} {mine * 1e3:8.3f} {ref * 1e3:8.3f} "
              f"{ref / mine:6.1f} {expat * 1e3:8.3f} {mine / expat:6.2f}")
    print()
    g, f, x = totals["gpx"], totals["fit"], totals["tcx"]
    print(f"GPX total: ours {g[0] * 1e3:.2f} ms, gpxpy {g[1] * 1e3:.2f} ms -> {g[1] / g[0]:.1f}x faster "
          f"(target >= {GPX_TARGET:.0f}x); bare expat {g[2] * 1e3:.2f} ms -> ours {g[0] / g[2]:.2f}x expat "
          f"(target <= {EXPAT_TARGET:.0f}x)")
    print(f"TCX total: ours {x[0] * 1e3:.2f} ms; bare expat {x[2] * 1e3:.2f} ms -> ours {x[0] / x[2]:.2f}x expat")
    print(f"FIT total: ours {f[0] * 1e3:.2f} ms, fitdecode {f[1] * 1e3:.2f} ms -> {f[1] / f[0]:.1f}x faster "
          f"(target >= {FIT_TARGET:.0f}x)")
    print()
    clauses = [
        (g[1] / g[0] >= GPX_TARGET, f"GPX parse + metrics >= {GPX_TARGET:.0f}x faster than gpxpy — {g[1] / g[0]:.1f}x"),
        (g[0] / g[2] <= EXPAT_TARGET, f"GPX within {EXPAT_TARGET:.0f}x of bare expat — {g[0] / g[2]:.2f}x"),
        (f[1] / f[0] >= FIT_TARGET, f"FIT >= {FIT_TARGET:.0f}x faster than fitdecode — {f[1] / f[0]:.1f}x"),
    ]
    for ok, text in clauses:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
