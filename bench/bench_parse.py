"""Benchmark: our GPX parse_bytes + normalize against gpxpy.parse, and peak memory on a ~100 MB GPX.

Usage (from the repository root)::

    python bench/bench_parse.py            # 1-hour, 3,600-point GPX, best of N runs
    python bench/bench_parse.py --big      # also peak RSS of a child process parsing ~100 MB

A FIT section follows: parse_fit (the numpy decoder) against the fitdecode-based reference parser on
the largest FIT file of the activity corpus (``tests/data/corpus/fit``; ``--corpus DIR`` reads ``DIR/fit``
instead, and no FIT file there is an error). ``--fit-runs`` sets the runs of the slow reference, ``--no-fit``
skips the section.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx version="1.1" creator="bench" xmlns="http://www.topografix.com/GPX/1/1"\n'
    '     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">\n'
    " <metadata><name>Benchmark run</name></metadata>\n"
    " <trk><name>Benchmark run</name><type>running</type><trkseg>\n"
)
FOOTER = " </trkseg></trk>\n</gpx>\n"


def iter_points(n: int, seed: int = 42, start: float = 1_700_000_000.0) -> Iterator[str]:
    """``n`` 1 Hz trkpt elements of a plausible run (random-walk heading, ~3 m/s, rolling terrain)."""
    rng = random.Random(seed)
    lat, lon, ele, hr = 47.3769, 8.5417, 410.0, 120.0
    heading = rng.uniform(0.0, 2.0 * math.pi)
    for i in range(n):
        heading += rng.gauss(0.0, 0.08)
        speed = max(0.5, 3.0 + rng.gauss(0.0, 0.3))
        lat += speed * math.cos(heading) / 111_195.0
        lon += speed * math.sin(heading) / (111_195.0 * math.cos(math.radians(lat)))
        ele += rng.gauss(0.0, 0.25)
        hr = min(190.0, max(90.0, hr + rng.gauss(0.05, 1.0)))
        stamp = datetime.fromtimestamp(start + i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        yield (f'  <trkpt lat="{lat:.7f}" lon="{lon:.7f}">\n'
               f"    <ele>{ele:.1f}</ele>\n"
               f"    <time>{stamp}</time>\n"
               f"    <extensions>\n"
               f"      <gpxtpx:TrackPointExtension>\n"
               f"        <gpxtpx:hr>{round(hr)}</gpxtpx:hr>\n"
               f"      </gpxtpx:TrackPointExtension>\n"
               f"    </extensions>\n"
               f"  </trkpt>\n")


def make_gpx(n: int = 3600, seed: int = 42) -> bytes:
    return (HEADER + "".join(iter_points(n, seed)) + FOOTER).encode()


def write_big_gpx(path: Path, target_bytes: int) -> int:
    """Stream a GPX of about ``target_bytes`` to ``path``; returns the number of points."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        written = len(HEADER)
        for chunk in iter_points(10**9):
            out.write(chunk)
            written += len(chunk)
            n += 1
            if written >= target_bytes:
                break
        out.write(FOOTER)
    return n


def best_of(funcs: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Best CPU time (process_time) per function over ``runs`` rounds, interleaved.

    CPU time rather than wall time and interleaving rather than one batch per parser: on a shared
    machine both make the comparison fair even when other work competes for the cores.
    """
    best = dict.fromkeys(funcs, math.inf)
    for _ in range(runs):
        for name, func in funcs.items():
            t0 = time.process_time()
            func()
            best[name] = min(best[name], time.process_time() - t0)
    return best


CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from domain.algorithms.parsing import normalize, parse_bytes
data = open({path!r}, "rb").read()
t0 = time.perf_counter()
track = normalize(parse_bytes(data, "gpx"))
elapsed = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(track), elapsed, peak_kib)
"""


def run_big(size_mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.gpx"
        t0 = time.perf_counter()
        n = write_big_gpx(path, size_mb * 1024 * 1024)
        size = path.stat().st_size
        print(f"\nbig GPX: {size / 2**20:.1f} MiB, {n:,} points (generated in {time.perf_counter() - t0:.1f} s)")
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
                             check=True, capture_output=True, text=True).stdout.split()
        points, elapsed, peak_kib = int(out[0]), float(out[1]), int(out[2])
        print(f"  ours: {elapsed:.2f} s ({points / elapsed:,.0f} points/s), "
              f"peak RSS of the child process {peak_kib / 1024:.0f} MiB (file itself {size / 2**20:.0f} MiB)")


CORPUS = ROOT / "tests" / "data" / "corpus"


def run_fit(runs: int, reference_runs: int, corpus: Path = CORPUS) -> None:
    """parse_fit vs the fitdecode-based parser on the corpus' largest FIT file (same Track checked)."""
    files = sorted((corpus / "fit").glob("*.fit"), key=lambda p: p.stat().st_size)
    if not files:
        raise SystemExit(f"FIT: no .fit file under {corpus / 'fit'} (pass --corpus DIR, or --no-fit)")
    import numpy as np

    from domain.algorithms.parsing.fit import parse_fit, parse_fit_fitdecode
    from domain.algorithms.parsing.fitfast import parse as parse_fast

    path = files[-1]
    data = path.read_bytes()
    ours, ref = parse_fit(data), parse_fit_fitdecode(data)
    assert len(ours) == len(ref) and np.array_equal(ours.time, ref.time, equal_nan=True)
    parse_fast(data)  # raises if the file would need the fitdecode fallback
    fast = best_of({"ours": lambda: parse_fit(data)}, runs)["ours"]
    slow = best_of({"fitdecode": lambda: parse_fit_fitdecode(data)}, reference_runs)["fitdecode"]
    n = len(ours)
    print(f"\nFIT {path.name}: {n:,} records, {len(data) / 1024:.0f} KiB, best CPU time "
          f"(ours of {runs} runs, fitdecode of {reference_runs})")
    print(f"  ours      parse_fit          : {fast * 1e3:8.2f} ms  {fast / n * 1e6:7.2f} µs/record")
    print(f"  fitdecode parse_fit_fitdecode: {slow * 1e3:8.2f} ms  {slow / n * 1e6:7.2f} µs/record")
    print(f"  speed-up: {slow / fast:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="runs per parser; the best is reported")
    ap.add_argument("--points", type=int, default=3600, help="points in the small GPX (1 Hz)")
    ap.add_argument("--big", action="store_true", help="also measure peak RSS on a generated ~100 MB GPX")
    ap.add_argument("--big-mb", type=int, default=100, help="size of the big GPX in MiB")
    ap.add_argument("--fit-runs", type=int, default=3, help="runs of the (slow) fitdecode FIT reference")
    ap.add_argument("--no-fit", action="store_true", help="skip the FIT section")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="corpus directory whose fit/ holds the FIT files "
                    "(default: %(default)s)")
    args = ap.parse_args()

    import gpxpy

    from domain.algorithms.parsing import normalize, parse_bytes
    from domain.algorithms.parsing.gpx import parse_gpx

    data = make_gpx(args.points)
    text = data.decode()
    n = len(normalize(parse_bytes(data, "gpx")))
    reference = sum(len(s.points) for t in gpxpy.parse(text).tracks for s in t.segments)
    assert n == reference == args.points, (n, reference)

    times = best_of({
        "ours": lambda: normalize(parse_bytes(data, "gpx")),
        "parse_only": lambda: parse_bytes(data, "gpx"),
        "streaming": lambda: normalize(parse_gpx(data, fast=False)),
        "gpxpy": lambda: gpxpy.parse(text),
    }, args.runs)
    ours, parse_only, streaming, theirs = times["ours"], times["parse_only"], times["streaming"], times["gpxpy"]
    print(f"GPX 1.1, {args.points:,} points, {len(data) / 1024:.0f} KiB, best CPU time of {args.runs} interleaved runs "
          f"(python {sys.version.split()[0]})")
    print(f"  ours   parse_bytes+normalize: {ours * 1e3:7.2f} ms  {args.points / ours:12,.0f} points/s")
    print(f"  ours   parse_bytes only     : {parse_only * 1e3:7.2f} ms  {args.points / parse_only:12,.0f} points/s")
    print(f"  ours   streaming engine only: {streaming * 1e3:7.2f} ms  {args.points / streaming:12,.0f} points/s"
          "  (the fallback for files the fast path declines)")
    print(f"  gpxpy  gpxpy.parse          : {theirs * 1e3:7.2f} ms  {args.points / theirs:12,.0f} points/s")
    print(f"  speed-up (parse+normalize vs gpxpy.parse): {theirs / ours:.1f}x")
    if not args.no_fit:
        run_fit(args.runs, args.fit_runs, args.corpus)
    if args.big:
        run_big(args.big_mb)


if __name__ == "__main__":
    main()
