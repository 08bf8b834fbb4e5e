"""Health figures: food search latency and top-3 accuracy, an export.xml import, a 10,000-sample sync.

    REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python bench/bench_health.py [--database-url URL] [--queries 1000]
        [--export-gb 1.0] [--samples 10000]

Makes a throwaway database on the PostgreSQL server of ``--database-url`` (default ``DATABASE_URL`` or the local
server), builds the schema with the migrations, loads the shipped catalogue (8,789 foods), prints the figures and
drops the database.

- Search: 1,000 queries drawn (seeded) from the labelled set ``bench/data/food_queries.tsv`` as people type them:
  the whole words, the last word cut short (typing), and one typo (a letter dropped, doubled, swapped with the
  next or replaced). Latency is the search operation the endpoint calls (index query, ranking and the foods with
  their portions), per query; top-3 is the share of queries whose intended food is among the first three.
- Export: a synthetic ``export.xml`` of ``--export-gb`` GB (written to a temporary file; heart-rate and step
  samples as most of a real export, one record in twenty of a kind we import, the iOS 16 DOCTYPE) imported by
  a child process from the file (``domain.health_sync.export_import``: streamed, written in batches): records read
  per second and the child's peak RSS.
- Sync: one athlete's 10,000-sample HealthKit batch (sleep stages, heart rate, HRV, steps, energy, body mass,
  water) through ``POST /api/v1/health/sync`` in-process (auth, JSON, validation, writes, commit), then the
  same batch again (which must change nothing) and a batch deleting all of it.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.embedded import create_database, drop_database  # noqa: E402
from models import migrate  # noqa: E402

QUERIES = ROOT / "bench" / "data" / "food_queries.tsv"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def labelled() -> list[tuple[str, re.Pattern[str]]]:
    rows = []
    for line in QUERIES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            query, pattern = line.split("\t")
            rows.append((query, re.compile(pattern, re.IGNORECASE)))
    return rows


def typo(query: str, rng: random.Random) -> str:
    words = query.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 5]
    if not candidates:
        return query
    i = rng.choice(candidates)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)  # people rarely get the first letter wrong
    kind = rng.choice(["drop", "double", "swap", "replace"])
    if kind == "drop":
        w = w[:p] + w[p + 1:]
    elif kind == "double":
        w = w[:p] + w[p] + w[p:]
    elif kind == "swap":
        w = w[:p] + w[p + 1] + w[p] + w[p + 2:]
    else:
        w = w[:p] + rng.choice(LETTERS.replace(w[p], "")) + w[p + 1:]
    words[i] = w
    return " ".join(words)


def prefix(query: str, rng: random.Random) -> str:
    *head, last = query.split()
    keep = max(3, min(len(last), round(len(last) * rng.uniform(0.6, 0.9))))
    return " ".join([*head, last[:keep]])


def query_set(n: int, seed: int = 13) -> list[tuple[str, str, re.Pattern[str]]]:
    rng = random.Random(seed)
    base = labelled()
    out = []
    for i in range(n):
        query, pattern = base[i % len(base)]
        kind = ("typed", "prefix", "typo")[(i // len(base)) % 3] if i >= len(base) else "typed"
        text = {"typed": query, "prefix": prefix(query, rng), "typo": typo(query, rng)}[kind]
        out.append((kind, text, pattern))
    rng.shuffle(out)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_search(app: Any, n: int) -> None:
    from domain.health import foods
    from models import User, db

    with app.app_context():
        user = User(firebase_uid="bench-search", email="bench@example.com")
        db.session.add(user)
        db.session.commit()
        queries = query_set(n)
        for _, text, _ in queries[:50]:  # warm the vocabulary, the plan cache and PostgreSQL's buffers
            foods.search(user, text, 20)
        latencies: list[float] = []
        hits: dict[str, list[bool]] = {"typed": [], "prefix": [], "typo": []}
        misses: list[str] = []
        for kind, text, pattern in queries:
            started = time.perf_counter()
            result = foods.search(user, text, 20)
            latencies.append((time.perf_counter() - started) * 1000)
            top3 = [item["name"] for item in result["items"][:3]]
            ok = any(pattern.search(name) for name in top3)
            hits[kind].append(ok)
            if not ok and kind == "typed":
                misses.append(f"{text!r} → {top3}")
        db.session.remove()
    total = sum(sum(v) for v in hits.values()) / sum(len(v) for v in hits.values())
    print(f"food search over {foods_count(app)} foods, {len(latencies)} queries "
          f"({', '.join(f'{k} {len(v)}' for k, v in hits.items())}):")
    print(f"  latency ms: p50 {statistics.median(latencies):.1f}  p95 {pct(latencies, 0.95):.1f}  "
          f"p99 {pct(latencies, 0.99):.1f}  max {max(latencies):.1f}   (target p95 <= 20 ms)")
    print(f"  intended food in the top 3: {100 * total:.1f} % overall; "
          + ", ".join(f"{k} {100 * sum(v) / len(v):.1f} %" for k, v in hits.items()))
    unique_misses = sorted(set(misses))
    if unique_misses:
        print(f"  typed queries missed ({len(unique_misses)} of {len(labelled())}): " + "; ".join(unique_misses))


def foods_count(app: Any) -> int:
    from domain.health import foods

    with app.app_context():
        return foods.catalogue_size()


def sync_batch(n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    samples: list[dict[str, Any]] = []
    kinds = ["sleep", "resting_heart_rate", "hrv_sdnn", "steps", "active_energy", "body_mass", "water"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        at = start + timedelta(minutes=5 * i)
        sample: dict[str, Any] = {"type": kind, "source_id": f"bench-{i:06d}"}
        if kind in ("sleep", "steps", "active_energy"):
            sample.update(start=at.isoformat(), end=(at + timedelta(minutes=4)).isoformat())
        else:
            sample["at"] = at.isoformat()
        sample.update({"sleep": {"stage": "asleepCore"}, "resting_heart_rate": {"value": 50 + i % 10},
                       "hrv_sdnn": {"value": 40 + i % 30, "unit": "ms"}, "steps": {"value": 100 + i % 500},
                       "active_energy": {"value": 5 + i % 20, "unit": "kcal"},
                       "body_mass": {"value": 70 + (i % 20) / 10, "unit": "kg"},
                       "water": {"value": 100 + i % 300, "unit": "ml"}}[kind])
        samples.append(sample)
    return samples


def bench_sync(app: Any, n: int) -> None:
    from webapp.auth import dev_token

    client = app.test_client()
    headers = {"Authorization": f"Bearer {dev_token('bench-sync@example.com', app.config['FIREBASE_PROJECT_ID'])}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    app.config["RATE_LIMIT_WRITES_PER_MIN"] = 0
    samples = sync_batch(n)
    body = {"source": "healthkit", "anchor": "bench", "samples": samples}
    print(f"health sync, one batch of {n} samples through POST /api/v1/health/sync:")
    for label, payload in (("first", body), ("again (no-op)", body),
                           ("deletion of all", {"source": "healthkit", "deleted": [s["source_id"] for s in samples]})):
        started = time.perf_counter()
        resp = client.post("/api/v1/health/sync", json=payload, headers=headers)
        elapsed = time.perf_counter() - started
        result = resp.get_json()
        print(f"  {label}: {elapsed:.2f} s ({n / elapsed:,.0f} samples/s)  status {resp.status_code}  "
              f"created {result.get('created')} updated {result.get('updated')} unchanged {result.get('unchanged')}"
              f" deleted {result.get('deleted')}")


def export_child(path: str) -> None:
    """Runs in a child process, so its peak RSS is the import's alone."""
    import resource

    from domain.health_sync import export_import
    from models import User, db
    from webapp import create_app

    app = create_app("development")
    with app.app_context():
        user = User(firebase_uid="bench-export", email="bench-export@example.com")
        db.session.add(user)
        db.session.commit()
        started = time.perf_counter()
        with open(path, "rb") as stream:
            counts = export_import.import_export(user, stream)
        elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {counts['records']:,} records of the kinds we import: {counts['created']:,} stored, "
          f"{counts['unchanged']:,} repeated, {counts['skipped']:,} refused; {elapsed:.1f} s in all; "
          f"peak RSS {rss_mb:.0f} MB (target <= 300 MB)")
    print(f"EXPORT_SECONDS={elapsed}")


def bench_export(gigabytes: float) -> None:
    import subprocess
    import tempfile

    from domain.algorithms.parsing.health_records import count_records
    from tests.support.health_export import big_export_chunks

    with tempfile.NamedTemporaryFile(prefix="export-", suffix=".xml", dir=os.environ.get("TMPDIR")) as tmp:
        started = time.perf_counter()
        for chunk in big_export_chunks(int(gigabytes * 1e9)):
            tmp.write(chunk)
        tmp.flush()
        size = tmp.tell()
        print(f"export.xml import: a synthetic export of {size / 1e9:.2f} GB written in "
              f"{time.perf_counter() - started:.0f} s")
        with open(tmp.name, "rb") as stream:
            total = count_records(stream)
        result = subprocess.run([sys.executable, __file__, "--export-child", tmp.name], capture_output=True,
                                text=True, env=os.environ, check=False)
        lines = result.stdout.splitlines()
        for line in lines:
            if not line.startswith("EXPORT_SECONDS="):
                print(line)
        seconds = next((float(line.split("=", 1)[1]) for line in lines if line.startswith("EXPORT_SECONDS=")), None)
        if seconds is None:
            print(f"  the import failed: {result.stderr[-2000:]}")
            return
        print(f"  {total:,} records in the file read at {total / seconds:,.0f} records/s "
              f"({size / 1e6 / seconds:.0f} MB/s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--export-gb", type=float, default=1.0, help="0 to leave the export figure out")
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child)
        return 0
    server = args.database_url
    name = f"strava_bench_health_{os.getpid()}"
    create_database(server, name, drop=True)
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        migrate.upgrade(url)
        os.environ.update({"DATABASE_URL": url, "APP_ENV": "development",
                           "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "LOG_LEVEL": "WARNING"})
        from domain.health import foods
        from webapp import create_app

        app = create_app("development")
        with app.app_context():
            started = time.perf_counter()
            added = foods.import_catalogue()
            print(f"catalogue: {added} foods loaded in {time.perf_counter() - started:.1f} s")
        bench_search(app, args.queries)
        if args.export_gb > 0:
            bench_export(args.export_gb)
        bench_sync(app, args.samples)
        from models import db

        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
