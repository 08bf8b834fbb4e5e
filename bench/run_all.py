"""`make bench`: run every benchmark one after the other and print their figures.

Each benchmark sets up (and removes) its own database and Redis; run them on an otherwise idle machine — the
figures are CPU-bound and two cores are easily disturbed. Pass --quick for a smoke run of all of them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: list[tuple[str, list[str], list[str]]] = [
    # (script, full-run arguments, quick-run arguments)
    ("bench_parse.py", ["--big"], ["--runs", "3"]),
    ("bench_ingest_cpu.py", ["--rss"], ["--runs", "3"]),
    ("bench_matching_pure.py", [], []),
    ("bench_ingest_e2e.py", [], ["--quick"]),
    ("bench_ingest_e2e.py", ["--kill-test"], ["--kill-test", "--kill-points", "60000"]),
    ("bench_segments.py", [], ["--quick"]),
    ("bench_feed.py", [], ["--reads", "200", "--fans", "20000"]),
    ("bench_feed_e2e.py", [], ["--uploads", "5"]),
    ("bench_health.py", [], ["--queries", "200", "--export-gb", "0.02", "--samples", "1000"]),
]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for script, full, fast in BENCHES:
        args = [sys.executable, str(HERE / script), *(fast if quick else full)]
        print(f"\n===== {' '.join(args[1:])}", flush=True)
        if subprocess.run(args).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
