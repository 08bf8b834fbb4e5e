"""Benchmark: the ingest stage's CPU work on a 1-hour, 3,600-point GPX with heart rate, beside gpxpy.

Ours: parse_bytes + normalize + compute_metrics (the figure the product asks for), and the whole
in-memory ingest (``summarize``: metrics, owner and privacy-filtered maps, the compressed stream blob).
gpxpy: gpxpy.parse + the metrics gpxpy offers (length, moving data, climbing, extremes, duration, and the
average heart rate from its extension elements) on the same bytes, in the same run.

With ``--rss`` it also measures, in fresh child processes, the peak RSS of the whole ingest of a ~100 MB GPX
(parse → normalize → summarize → encode), which is what a worker holds for such an upload.

    .venv/bin/python bench/bench_ingest_cpu.py [--runs 15] [--rss] [--rss-mb 100]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as in the worker (devstack/stack.py, Dockerfile)

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpxpy
from bench_parse import make_gpx, write_big_gpx

from domain.algorithms.metrics import compute_metrics
from domain.algorithms.parsing import normalize, parse_bytes
from domain.algorithms.privacy import Zone
from domain.algorithms.summary import summarize


def ours_parse_metrics(data: bytes) -> object:
    track = normalize(parse_bytes(data, "gpx"))
    return compute_metrics(track, "running")


def ours_full_ingest(data: bytes) -> object:
    track = normalize(parse_bytes(data, "gpx"))
    zone = Zone(float(track.lat[0]), float(track.lon[0]), 300.0)
    return summarize(track, "running", [zone], hide_start_end_m=200.0, seed=7)


def gpxpy_parse_metrics(text: str) -> object:
    gpx = gpxpy.parse(text)
    hr = [float(e.text) for t in gpx.tracks for s in t.segments for p in s.points
          for ext in p.extensions for e in ext.iter() if e.tag.endswith("hr") and e.text]
    return (gpx.length_3d(), gpx.get_moving_data(), gpx.get_uphill_downhill(), gpx.get_elevation_extremes(),
            gpx.get_duration(), gpx.get_bounds(), sum(hr) / len(hr) if hr else None)


def best_of(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def child_peak_rss(path: str) -> None:
    data = Path(path).read_bytes()
    track = normalize(parse_bytes(data, "gpx"))
    del data
    summary = summarize(track, "running", [], hide_start_end_m=0.0, seed=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(track)} {len(summary.stream_blob)} {peak:.0f}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_peak_rss(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--points", type=int, default=3600)
    ap.add_argument("--rss", action="store_true", help="peak RSS of the whole ingest of a ~100 MB GPX")
    ap.add_argument("--rss-mb", type=int, default=100)
    args = ap.parse_args()
    print(f"$ {' '.join(sys.argv)}   (nproc={os.cpu_count()}; CPU time, best of {args.runs})")
    data = make_gpx(args.points)
    text = data.decode()
    n = args.points
    ours = best_of(lambda: ours_parse_metrics(data), args.runs)
    full = best_of(lambda: ours_full_ingest(data), args.runs)
    theirs = best_of(lambda: gpxpy_parse_metrics(text), max(3, args.runs // 3))
    print(f"GPX: {n} points, {len(data) / 1e6:.2f} MB, heart rate in gpxtpx extensions")
    print(f"  ours   parse + normalize + metrics : {ours * 1e3:7.1f} ms  {n / ours:10,.0f} points/s")
    print(f"  ours   whole in-memory ingest      : {full * 1e3:7.1f} ms  {n / full:10,.0f} points/s"
          "  (+ privacy, maps, stream blob)")
    print(f"  gpxpy  parse + gpxpy metrics       : {theirs * 1e3:7.1f} ms  {n / theirs:10,.0f} points/s")
    print(f"  speed-up, parse + metrics          : {theirs / ours:7.1f}x  (target >= 8x)")
    if args.rss:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "big.gpx"
            points = write_big_gpx(path, args.rss_mb * 1024 * 1024)
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                                 check=True).stdout.split()
            size = path.stat().st_size / 1e6
        kept, blob, peak = int(out[0]), int(out[1]), float(out[2])
        print(f"big GPX: {size:.0f} MB, {points:,} points written, {kept:,} kept")
        print(f"  whole ingest peak RSS : {peak:.0f} MiB (target <= 300 MB)")
        print(f"  stored stream         : {blob / 1e6:.2f} MB = {blob / kept:.2f} bytes/point")


if __name__ == "__main__":
    main()
