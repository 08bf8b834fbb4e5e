"""End-to-end check of insights (issue 14) against a running stack (`make run`).

    .venv/bin/python bench/smoke_insights.py [--base-url http://127.0.0.1:8000]

An athlete in Europe/Berlin (male, born 1990, 70 kg, max HR 190, resting 50, threshold 170) uploads seven weeks of
heart-rate runs (GPX written here from ``tests.support.synthetic``), a weight and, where the health API exists, a
night's sleep. The script reads each activity's heart-rate stream back and computes Banister TRIMP, HRSS and the
42/7-day fitness/fatigue recurrences itself (its own few lines of arithmetic, not the server's module); the
server's per-activity loads and its daily fitness, fatigue and form must match them. It then expects an insight
card with its evidence, starts a second beat process next to the stack's own, moves the development clock
(``flask --app webapp dev-clock set``) to 20 s before the athlete's local Monday 08:00 and expects exactly one
weekly summary for the week before, and a planned-workout reminder at its local minute. The clock is reset at the
end. Prints PASS/FAIL per check; exits 1 if any failed (2 if the stack could not be reached).
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Failed, Report, run_steps, until  # noqa: E402

from tests.support.synthetic import synthetic_track, to_gpx  # noqa: E402

TZ = "Europe/Berlin"
MAX_HR, REST_HR, LTHR = 190.0, 50.0, 170.0
FIRST_DAY, LAST_DAY = date(2026, 10, 15), date(2026, 12, 3)
MONDAY = date(2026, 12, 7)
BIN = ROOT / ".venv" / "bin"


# --- the script's own arithmetic (the formulas docs/insights.md states) ---------------------------------------

def trimp(times: list[float], hrs: list[float | None]) -> float:
    total = 0.0
    for i in range(len(times) - 1):
        dt = times[i + 1] - times[i]
        hr = hrs[i]
        if hr is None or hr <= 0 or dt <= 0 or dt > 30:
            continue
        x = min(max((hr - REST_HR) / (MAX_HR - REST_HR), 0.0), 1.0)
        total += dt / 60.0 * x * 0.64 * math.exp(1.92 * x)
    return total


def hrss(t: float) -> float:
    x = (LTHR - REST_HR) / (MAX_HR - REST_HR)
    return 100.0 * t / (60.0 * x * 0.64 * math.exp(1.92 * x))


def fitness_series(loads: dict[date, float], start: date, end: date) -> dict[date, tuple[float, float]]:
    fit = fat = 0.0
    out = {}
    day = start
    while day <= end:
        load = loads.get(day, 0.0)
        fit += (load - fit) * (1 - math.exp(-1 / 42))
        fat += (load - fat) * (1 - math.exp(-1 / 7))
        out[day] = (fit, fat)
        day += timedelta(days=1)
    return out


# --- the stack ---------------------------------------------------------------------------------------------------

def flask(*args: str) -> str:
    proc = subprocess.run([str(BIN / "flask"), "--app", "webapp", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise Failed(f"flask {' '.join(args)}: {proc.stderr.strip()[-300:]}")
    return proc.stdout + proc.stderr


def set_clock(moment: datetime) -> float:
    """Set the development clock; returns the offset (s) the stack now adds to real time."""
    flask("dev-clock", "set", moment.isoformat())
    return moment.timestamp() - time.time()


def upload(api: Api, token: str, day: date, minutes: int, seed: int) -> int:
    start = datetime(day.year, day.month, day.day, 6, 30, tzinfo=UTC).timestamp()
    track = synthetic_track(seed=seed, n_points=minutes * 60, start_time=start, speed_mps=3.0)
    resp = api.call("POST", "/uploads", token, files={"file": (f"run-{day}.gpx", to_gpx(track))},
                    data={"sport_type": "running", "visibility": "only_me"})
    return int(resp.json()["id"])


def run(api: Api, report: Report) -> None:
    ann = api.token("insights")
    api.call("PATCH", "/me", ann, json={"display_name": "Insight Ann", "sex": "M", "birth_year": 1990,
                                        "weight_kg": 70.0, "preferences": {"timezone": TZ}})
    api.call("PATCH", "/me/training-settings", ann, json={"max_hr": int(MAX_HR), "resting_hr": int(REST_HR),
                                                          "threshold_hr": int(LTHR)})
    # Seven weeks, a rest day every fourth day, the last run the longest of all.
    plan = []
    day, seed = FIRST_DAY, 1
    while day <= LAST_DAY:
        if (day - FIRST_DAY).days % 4 != 3:
            minutes = 95 if day == LAST_DAY else 35 + 5 * ((day - FIRST_DAY).days % 7)
            plan.append((day, minutes, seed))
            seed += 1
        day += timedelta(days=1)
    uploads = [upload(api, ann, d, m, s) for d, m, s in plan]
    statuses: dict[int, dict[str, Any]] = {}

    def all_done() -> bool:
        for uid in uploads:
            if statuses.get(uid, {}).get("status") not in ("ready", "failed"):
                statuses[uid] = api.call("GET", f"/uploads/{uid}", ann).json()
        return all(s["status"] in ("ready", "failed") for s in statuses.values()) and len(statuses) == len(uploads)

    report.require("a month and more of heart-rate runs become activities", until(all_done, 300, 1.0) and all(
        s["status"] == "ready" for s in statuses.values()), f"{len(uploads)} uploads, {FIRST_DAY} to {LAST_DAY}")
    activity_ids = [statuses[u]["activity_id"] for u in uploads]

    # Weight (the profile) and sleep (the health API, where it exists).
    sleep = api.call("POST", "/me/sleep", ann, expect=(201, 404, 405), json={
        "start": "2026-12-02T22:30:00+01:00", "end": "2026-12-03T06:30:00+01:00", "quality": 4})
    report.check("a weight and a night's sleep are recorded", sleep.status_code == 201,
                 f"weight 70 kg on the profile; POST /me/sleep → {sleep.status_code}")

    # Per activity: the server's load against the script's HRSS from the same heart-rate stream.
    mine: dict[date, float] = {}
    worst = 0.0

    def loads_ready() -> bool:
        return all(api.call("GET", f"/activities/{a}", ann).json()["training_load"] is not None
                   for a in activity_ids[-3:])

    until(loads_ready, 60, 1.0)
    for activity_id in activity_ids:
        body = api.call("GET", f"/activities/{activity_id}", ann).json()
        streams = api.call("GET", f"/activities/{activity_id}/streams?keys=time,heartrate", ann).json()
        expected = hrss(trimp(streams["time"]["data"], streams["heartrate"]["data"]))
        got = body["training_load"] or 0.0
        worst = max(worst, abs(got - expected) / expected)
        local_day = datetime.fromisoformat(body["start_date"]).astimezone(ZoneInfo(TZ)).date()
        mine[local_day] = mine.get(local_day, 0.0) + expected
    report.check("each activity's load is the HRSS the script computes from its heart-rate stream", worst < 0.005,
                 f"{len(activity_ids)} activities, worst relative difference {worst:.4%}")

    end = LAST_DAY + timedelta(days=3)
    ours = fitness_series(mine, FIRST_DAY, end)
    served = api.call("GET", f"/me/fitness?from={FIRST_DAY}&to={end}", ann).json()["items"]
    diffs = [max(abs(i["fitness"] - ours[date.fromisoformat(i["date"])][0]),
                 abs(i["fatigue"] - ours[date.fromisoformat(i["date"])][1]),
                 abs(i["form"] - (ours[date.fromisoformat(i["date"])][0] - ours[date.fromisoformat(i["date"])][1])))
             for i in served]
    last = served[-1]
    report.check("fitness, fatigue and form match the script's own 42/7-day recurrences", max(diffs) <= 0.11,
                 f"{len(served)} days, largest difference {max(diffs):.3f} (values rounded to 0.1); on {end}: "
                 f"fitness {last['fitness']}, fatigue {last['fatigue']}, form {last['form']}")

    cards = api.call("GET", "/me/insights", ann).json()["items"]
    report.check("at least one insight, with the numbers behind it", any(c["evidence"] for c in cards),
                 "; ".join(f"{c['title']} {c['evidence']}" for c in cards[:3]))

    # A second beat next to the stack's own: two ticks every minute, still one summary.
    with tempfile.TemporaryDirectory() as tmp:
        beat = subprocess.Popen([str(BIN / "celery"), "-A", "webapp.worker", "beat", "--loglevel", "WARNING",
                                 "--schedule", os.path.join(tmp, "schedule")], cwd=ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            weekly_and_reminder(api, report, ann)
        finally:
            beat.terminate()
            beat.wait(20)
            flask("dev-clock", "reset")


def weekly_and_reminder(api: Api, report: Report, ann: str) -> None:
    tz = ZoneInfo(TZ)
    slot = datetime(MONDAY.year, MONDAY.month, MONDAY.day, 8, 0, tzinfo=tz)
    # The athlete's first slot is scheduled by a beat tick: wait until one has seen them.
    time.sleep(65)
    offset = set_clock(slot - timedelta(seconds=20))

    def summaries() -> list[dict[str, Any]]:
        return list(api.call("GET", "/me/summaries/weekly", ann).json()["items"])

    early = summaries()
    got = until(lambda: len(summaries()) > 0, 150, 2.0)
    items = summaries()
    made = datetime.fromisoformat(items[0]["created_at"]) + timedelta(seconds=offset) if items else None
    report.check("no summary before the athlete's local Monday 08:00", not early, f"{len(early)} before the slot")
    report.check("the weekly summary arrives at the local Monday 08:00 (two beats running)",
                 got and made is not None and slot <= made.astimezone(tz) < slot + timedelta(minutes=2),
                 f"created {made.astimezone(tz).isoformat() if made else None} (clock time), "
                 f"week_start {items[0]['week_start'] if items else None}")
    week = items[0] if items else {}
    report.check("it covers the seven days before and counts them",
                 week.get("week_start") == "2026-11-30" and week.get("totals", {}).get("count") == 3,
                 f"week_start {week.get('week_start')}, totals {week.get('totals', {}).get('count')} activities, "
                 f"{week.get('totals', {}).get('distance_m')} m, load {week.get('load')}, form {week.get('form')}")
    time.sleep(70)  # another tick of each beat
    notes = api.call("GET", "/notifications?limit=100", ann).json()["items"]
    report.check("exactly one summary and one summary notification after more ticks",
                 len(summaries()) == 1 and sum(n["kind"] == "weekly_summary" for n in notes) == 1,
                 f"{len(summaries())} summaries, {sum(n['kind'] == 'weekly_summary' for n in notes)} notifications")

    planned_at = datetime(MONDAY.year, MONDAY.month, MONDAY.day, 10, 0, tzinfo=tz)
    plan = api.call("POST", "/me/planned-workouts", ann, json={
        "sport_type": "running", "planned_at": planned_at.isoformat(), "duration_s": 3600,
        "remind_before_min": 30}).json()
    remind = planned_at - timedelta(minutes=30)
    offset = set_clock(remind - timedelta(seconds=15))

    def reminders() -> list[dict[str, Any]]:
        items = api.call("GET", "/notifications?limit=100", ann).json()["items"]
        return [n for n in items if n["kind"] == "workout_reminder"
                and n["payload"].get("planned_workout_id") == plan["id"]]

    got = until(lambda: bool(reminders()), 90, 1.0)
    found = reminders()
    at = datetime.fromisoformat(found[0]["created_at"]) + timedelta(seconds=offset) if found else None
    report.check("the planned-workout reminder comes at its local minute (09:30 for a 10:00 run)",
                 got and at is not None and remind <= at.astimezone(tz) < remind + timedelta(seconds=60),
                 f"at {at.astimezone(tz).isoformat() if at else None}: "
                 f"{found[0]['payload'].get('title') if found else ''}")
    time.sleep(35)
    report.check("and only once", len(reminders()) == 1, f"{len(reminders())} reminders")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"))
    args = parser.parse_args()
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going?)")
        return 2
    report = Report()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    return run_steps(report, lambda: run(api, report))


if __name__ == "__main__":
    sys.exit(main())
