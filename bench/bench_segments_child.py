"""A fresh process running the segments stage on given activities, for ``bench_segments.py``.

Run by the benchmark with the stack's environment (DATABASE_URL, REDIS_URL, …) and one JSON argument::

    {"cold": 12, "instrument_cold": false, "warm": [13, 14], "breakdown": [15], "cache_cleared": [16]}

``cold`` is processed first, with the per-process prepared-segment cache empty (the state of a worker
process after a restart); ``warm`` then runs with the cache hot; ``breakdown`` runs with timers around
the stage's steps; ``cache_cleared`` empties the cache before each run (cold cache, warm process).
Before any of them the child does what a new worker pool process does before its first task: it sends
Celery's ``worker_process_init`` (the warm-up, ``tasks.app``), timed apart as start-up; ``"no_warm_up": true``
only opens the database and Redis connections instead, as a pool process did before it warmed up.
Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Steps timed in the breakdown: label -> function looked up by name in tasks.segments. Indented labels
#: run inside the step above them (they are part of its time, not added to the total again).
STEPS: tuple[tuple[str, str], ...] = (
    ("decode stream", "decode_track"),
    ("candidates query (+ path blobs)", "candidates"),
    ("candidates query (ends only)", "candidate_ends"),
    ("stored keys of uncached segments", "stored_segments"),
    ("prepared-segment cache lookups", "cached_segment"),
    ("prepare segments (cache)", "prepared_segment"),
    ("prepare segments (batched, cache)", "prepared_segments"),
    ("end-point prefilter", "ends_within_reach"),
    ("prepare track", "prepare_track"),
    ("matching", "match_many_prepared"),
    ("  paths of segments crossing both gates", "whole_segments"),
    ("storing efforts", "store_efforts"),
    ("  PR ranks (batched)", "refresh_pr_ranks_many"),
    ("boards", "update_boards"),
    ("  ensure_ready", "ensure_ready"),
    ("achievements", "award"),
    ("  effort facts", "_effort_facts"),
    ("  activity awards", "_activity_awards"),
)


class Timers:
    """Wraps functions of a module (looked up by name at call time) with wall-clock accumulators."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.totals: dict[str, float] = defaultdict(float)
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        for label, name in STEPS:
            if not hasattr(self.module, name):  # a step older or newer code does not have
                continue
            original = getattr(self.module, name)
            self._originals[name] = original
            setattr(self.module, name, self._wrap(label, original))

    def uninstall(self) -> None:
        for name, original in self._originals.items():
            setattr(self.module, name, original)
        self._originals.clear()

    def _wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        is_generator = label == "  effort facts"  # a generator: time it while it is consumed

        if is_generator:
            def timed_gen(*args: Any, **kwargs: Any) -> Any:
                it = iter(fn(*args, **kwargs))  # a generator, or (newer code) a list
                while True:
                    t = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        self.totals[label] += time.perf_counter() - t
                        return
                    self.totals[label] += time.perf_counter() - t
                    yield item
            return timed_gen

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[label] += time.perf_counter() - t
        return timed


def run_one(activity_id: int) -> dict[str, Any]:
    from domain.segments import efforts as segments
    from models import db

    t, c = time.perf_counter(), time.process_time()
    created = segments.process_activity(activity_id)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    db.session.remove()  # as the task base does after every task
    return {"activity": activity_id, "ms": wall * 1000.0, "cpu_ms": cpu * 1000.0, "efforts": created}


def main() -> None:
    spec = json.loads(sys.argv[1])
    from celery.signals import worker_process_init
    from sqlalchemy import text

    from domain.segments import efforts as segments
    from models import db
    from models.redis_store import redis_store
    from webapp import create_app

    app = create_app("development")
    out: dict[str, Any] = {}
    if spec.get("no_warm_up"):
        with app.app_context():  # what the child did before pool processes warmed up: connections only
            db.session.execute(text("SELECT 1"))
            db.session.remove()
            redis_store.client.ping()
    else:
        # What a new worker pool process does before its first task (Celery sends this signal in the pool
        # process it just forked): the warm-up's own cost is start-up time, reported apart from the runs.
        t, c = time.perf_counter(), time.process_time()
        worker_process_init.send(sender=None)
        out["warm_up"] = {"ms": (time.perf_counter() - t) * 1000.0, "cpu_ms": (time.process_time() - c) * 1000.0}
    with app.app_context():
        timers = Timers(segments)
        if spec.get("instrument_cold"):
            timers.install()
        out["cold"] = run_one(spec["cold"])
        out["cold"]["steps"] = {k: v * 1000.0 for k, v in timers.totals.items()}
        out["cached_segments"] = len(segments._prepared)
        timers.uninstall()
        out["warm"] = [run_one(a) for a in spec.get("warm", [])]
        breakdown = []
        for activity_id in spec.get("breakdown", []):
            timers = Timers(segments)
            timers.install()
            run = run_one(activity_id)
            timers.uninstall()
            run["steps"] = {k: v * 1000.0 for k, v in timers.totals.items()}
            breakdown.append(run)
        out["breakdown"] = breakdown
        cleared = []
        for activity_id in spec.get("cache_cleared", []):
            segments._prepared.clear()
            timers = Timers(segments)
            timers.install()
            run = run_one(activity_id)
            timers.uninstall()
            run["steps"] = {k: v * 1000.0 for k, v in timers.totals.items()}
            cleared.append(run)
        out["cache_cleared"] = cleared
        if spec.get("profile"):  # cProfile over warm runs: where the CPU of the stage goes
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for activity_id in spec["profile"]:
                run_one(activity_id)
            profiler.disable()
            text_out = io.StringIO()
            pstats.Stats(profiler, stream=text_out).sort_stats("cumulative").print_stats(45)
            out["profile"] = text_out.getvalue()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
