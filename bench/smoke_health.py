"""End-to-end smoke test of health (issue 13) against a running stack: one PASS/FAIL line per "Done when" clause.

    .venv/bin/python bench/smoke_health.py [--base-url http://127.0.0.1:8000]

1. searches foods, a typo included; 2. logs a day of meals and water and reads the day's totals back; 3. posts a
night of phone interaction events and gets an estimated sleep session; 4. syncs a HealthKit-shaped batch twice
(the second changes nothing), then a deletion; 5. syncs a HealthKit workout with a route (20 minutes of 1 Hz
points): its upload becomes a private activity with GPS, the same batch again adds nothing, deleting the sample
removes the activity; 6. hydration reminders fire for an athlete in Asia/Tokyo and one in America/New_York at
their local times and not in quiet hours, time driven by the development clock (``flask --app webapp dev-clock
set``, run here against the same stack; the beat job runs every minute, so each step waits for at most one beat);
7. a second athlete gets 404 on every one of the first athlete's records.

New athletes on every run (unique emails). The development clock is reset at the end. Exit status 1 on any FAIL,
2 when the stack can't be reached.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_support import Api, Failed, Report, run_steps, until  # noqa: E402

BEAT_WAIT_S = 90.0
PIPELINE_WAIT_S = 120.0


def dev_clock(*args: str) -> str:
    """`flask --app webapp dev-clock …` from this checkout: it reads .data/stack.env, so it reaches the stack."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "webapp", "dev-clock", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise Failed(f"dev-clock {' '.join(args)}: {result.stderr.strip()[-300:]}")
    return (result.stdout + result.stderr).strip()


def foods_part(api: Api, report: Report, ann: str) -> dict[str, Any]:
    def names(q: str) -> list[str]:
        return [f["name"] for f in api.call("GET", "/foods", ann, params={"q": q, "limit": 5}).json()["items"]]

    banana = names("banana")
    typo = names("chiken brest")
    typing = names("strawb")
    report.check("foods: 'banana' finds raw bananas first", banana[:1] == ["Bananas, raw"], str(banana[:3]))
    report.check("foods: the typo 'chiken brest' finds chicken breast",
                 bool(typo) and all("chicken" in n.lower() and "breast" in n.lower() for n in typo[:3]),
                 str(typo[:3]))
    report.check("foods: the prefix 'strawb' finds strawberries", typing[:1] == ["Strawberries, raw"], str(typing[:3]))
    items = api.call("GET", "/foods", ann, params={"q": "banana", "limit": 1}).json()["items"]
    return items[0]


def day_part(api: Api, report: Report, ann: str, banana: dict[str, Any], day: datetime) -> dict[str, list[int]]:
    oats = api.call("GET", "/foods", ann, params={"q": "oats", "limit": 1}).json()["items"][0]
    medium = next(p for p in banana["portions"] if p["description"].startswith("medium"))
    meals = [("breakfast", 7, [{"food_id": oats["id"], "grams": 60},
                               {"food_id": banana["id"], "portion_id": medium["id"], "quantity": 1}]),
             ("lunch", 12, [{"food_id": banana["id"], "grams": 150}]),
             ("snack", 16, [{"food_id": oats["id"], "grams": 40}]),
             ("dinner", 19, [{"food_id": banana["id"], "grams": 100}, {"food_id": oats["id"], "grams": 30}])]
    ids: dict[str, list[int]] = {"meals": [], "water": []}
    expected_kcal = 0.0
    for meal_type, hour, items in meals:
        meal = api.call("POST", "/me/meals", ann, expect=(201,), json={
            "meal_type": meal_type, "eaten_at": (day + timedelta(hours=hour)).isoformat(), "items": items}).json()
        ids["meals"].append(meal["id"])
        expected_kcal += meal["totals"]["energy_kcal"]
    for hour, ml in ((8, 300), (11, 500), (14, 400), (18, 600)):
        ids["water"].append(api.call("POST", "/me/water", ann, expect=(201,), json={
            "ml": ml, "drunk_at": (day + timedelta(hours=hour)).isoformat()}).json()["id"])
    date = day.date().isoformat()
    nutrition = api.call("GET", "/me/nutrition/days", ann, params={"from": date, "to": date}).json()["items"][0]
    hydration = api.call("GET", "/me/hydration/days", ann, params={"from": date, "to": date}).json()["items"][0]
    target = nutrition["target"] or {}
    report.check("day: 4 meals logged, the day's energy totals them",
                 abs(nutrition["totals"]["energy_kcal"] - expected_kcal) < 0.5 and len(ids["meals"]) == 4,
                 f"{nutrition['totals']['energy_kcal']:.0f} kcal eaten, target {target.get('energy_kcal')} kcal")
    report.check("day: the target is basal (Mifflin–St Jeor) × 1.2 + activity",
                 abs(target.get("basal_kcal", 0) - 1730.0) < 0.5, str(target))
    report.check("day: 1,800 ml of water against the goal", hydration["drunk_ml"] == 1800 and hydration["goal_ml"] > 0,
                 f"{hydration['drunk_ml']} of {hydration['goal_ml']} ml")
    return ids


def sleep_part(api: Api, report: Report, ann: str, evening: datetime) -> int:
    marks = [(0, "screen_on"), (25, "screen_off"), (100, "unlock"), (170, "screen_off"), (360, "screen_on"),
             (361, "screen_off"), (640, "unlock"), (655, "screen_off")]
    events = [{"type": kind, "at": (evening + timedelta(minutes=m)).isoformat()} for m, kind in marks]
    result = api.call("POST", "/me/device-events", ann, json={"events": events}).json()
    listed = api.call("GET", "/me/sleep", ann, params={"source": "estimated"}).json()["items"]
    est = listed[0] if listed else {}
    report.check("sleep: a night of phone events gives an estimated session",
                 result["accepted"] == 8 and len(listed) == 1 and est.get("source") == "estimated"
                 and est.get("start", "").startswith((evening + timedelta(minutes=180)).strftime("%Y-%m-%dT%H:%M"))
                 and est.get("end", "").startswith((evening + timedelta(minutes=640)).strftime("%Y-%m-%dT%H:%M")),
                 f"{est.get('start')} → {est.get('end')} ±{est.get('uncertainty_min')} min, "
                 f"confidence {est.get('confidence')}")
    return int(est.get("id", 0))


def sync_part(api: Api, report: Report, ann: str, night: datetime) -> list[int]:
    stages = [("inBed", 0, 470), ("asleepCore", 10, 130), ("asleepDeep", 130, 200), ("asleepREM", 200, 260),
              ("asleepCore", 260, 460)]
    samples = [{"type": "sleep", "source_id": f"HK-SLEEP-{i}", "stage": s,
                "start": (night + timedelta(minutes=a)).isoformat(), "end": (night + timedelta(minutes=b)).isoformat()}
               for i, (s, a, b) in enumerate(stages)]
    morning = night + timedelta(hours=8)
    samples += [{"type": "resting_heart_rate", "source_id": "HK-RHR", "at": morning.isoformat(), "value": 51},
                {"type": "hrv_sdnn", "source_id": "HK-HRV", "at": morning.isoformat(), "value": 62, "unit": "ms"},
                {"type": "body_mass", "source_id": "HK-MASS", "at": morning.isoformat(), "value": 74.5, "unit": "kg"},
                {"type": "water", "source_id": "HK-WATER", "at": morning.isoformat(), "value": 250, "unit": "ml"},
                {"type": "steps", "source_id": "HK-STEPS", "start": morning.isoformat(),
                 "end": (morning + timedelta(hours=1)).isoformat(), "value": 3000}]
    body = {"source": "healthkit", "anchor": "hk-anchor-1", "samples": samples}
    first = api.call("POST", "/health/sync", ann, json=body).json()
    second = api.call("POST", "/health/sync", ann, json=body).json()
    report.check("sync: a HealthKit batch, then the same batch again changes nothing",
                 first["created"] == 10 and second["created"] == second["updated"] == 0
                 and second["unchanged"] == 10 and second["anchor"] == first["anchor"],
                 f"first {first['created']} created (anchor {first['anchor']}), second {second['unchanged']} "
                 f"unchanged (anchor {second['anchor']})")
    synced = [s for s in api.call("GET", "/me/sleep", ann).json()["items"] if s["source"] == "healthkit"]
    report.check("sync: the night arrives as one healthkit session with its stages",
                 len(synced) == 1 and [s["stage"] for s in synced[0]["stages"]] == [
                     "in_bed", "light", "deep", "rem", "light"], str([s["stage"] for s in synced[0]["stages"]])
                 if synced else "none")
    gone = api.call("POST", "/health/sync", ann, json={"source": "healthkit", "deleted": ["HK-RHR"]}).json()
    rhr = api.call("GET", "/me/body-metrics", ann, params={"kind": "resting_heart_rate"}).json()["items"]
    report.check("sync: a deletion removes the record", gone["deleted"] == 1 and rhr == [],
                 f"deleted {gone['deleted']}, anchor {gone['anchor']}")
    return [s["id"] for s in synced]


def route_points(start: datetime, seconds: int, speed_mps: float = 3.0) -> list[dict[str, Any]]:
    """A run at ``speed_mps`` heading north-east from Ljubljana, one location a second with heart rate, as
    HealthKit's HKWorkoutRoute gives them."""
    lat0, lon0, heading = 46.05, 14.50, math.radians(45.0)
    points = []
    for i in range(seconds):
        d = i * speed_mps
        points.append({"at": (start + timedelta(seconds=i)).isoformat(),
                       "lat": round(lat0 + d * math.cos(heading) / 111_320.0, 7),
                       "lon": round(lon0 + d * math.sin(heading) / (111_320.0 * math.cos(math.radians(lat0))), 7),
                       "ele": round(300.0 + 10.0 * math.sin(i / 120.0), 1), "hr": 140 + (i % 20)})
    return points


def route_part(api: Api, report: Report, ann: str, ann_id: int, start: datetime) -> None:
    """A synced workout with a route goes through the upload pipeline, once, and goes with its sample."""
    sample = {"type": "workout", "source_id": "HK-RUN-ROUTE", "activity": "running", "start": start.isoformat(),
              "end": (start + timedelta(minutes=20)).isoformat(), "value": 240,
              "route": route_points(start, 20 * 60)}
    body = {"source": "healthkit", "samples": [sample]}

    def own_activities() -> list[dict[str, Any]]:
        return api.call("GET", f"/users/{ann_id}/activities", ann, params={"limit": 100}).json()["items"]

    before = len(own_activities())
    first = api.call("POST", "/health/sync", ann, json=body).json()
    # A failed check ends this part only (the reminders and privacy parts still run).
    if not report.check("route: a HealthKit workout with 1,200 route points is synced as an upload",
                        first["created"] == 1 and len(first["uploads"]) == 1, str(first.get("uploads"))):
        return
    upload_id = first["uploads"][0]["upload_id"]
    upload: dict[str, Any] = {}

    def processed() -> bool:
        upload.update(api.call("GET", f"/uploads/{upload_id}", ann).json())
        return upload["status"] in ("ready", "failed", "duplicate")

    until(processed, PIPELINE_WAIT_S, step=1.0)
    activity = (api.call("GET", f"/activities/{upload['activity_id']}", ann).json()
                if upload.get("activity_id") else {})
    distance = float(activity.get("distance_m") or 0.0)
    if not report.check("route: its upload is processed into a private activity with GPS",
                        upload["status"] == "ready" and bool(activity.get("has_gps"))
                        and activity.get("visibility") == "only_me" and abs(distance - 3597.0) < 150.0,
                        f"upload {upload_id} {upload['status']}, activity {activity.get('id')}: {distance:.0f} m, "
                        f"GPS {activity.get('has_gps')}, {activity.get('visibility')}, \"{activity.get('name')}\""):
        return
    again = api.call("POST", "/health/sync", ann, json=body).json()
    after = len(own_activities())
    report.check("route: the same batch again adds no upload and no activity",
                 again["created"] == 0 and again["unchanged"] == 1 and again["uploads"] == [] and after == before + 1,
                 f"{again['unchanged']} unchanged, {after - before} activity")
    gone = api.call("POST", "/health/sync", ann, json={"source": "healthkit", "deleted": ["HK-RUN-ROUTE"]}).json()
    status = api.call("GET", f"/activities/{activity['id']}", ann, expect=range(100, 600)).status_code
    upload_status = api.call("GET", f"/uploads/{upload_id}", ann, expect=range(100, 600)).status_code
    report.check("route: deleting the sample removes its activity and upload",
                 gone["deleted"] == 1 and status == 404 and upload_status == 404 and len(own_activities()) == before,
                 f"activity → {status}, upload → {upload_status}")


def reminders_part(api: Api, report: Report) -> None:
    kenji, nora = api.token("kenji"), api.token("nora")
    # The next day at 01:00 UTC: 10:00 in Tokyo, 20:00 the evening before in New York (her quiet hours).
    day = (datetime.now(UTC) + timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    for token, tz, quiet in ((kenji, "Asia/Tokyo", None), (nora, "America/New_York", ("19:00", "07:00"))):
        api.call("GET", "/me", token)
        api.call("PATCH", "/me", token, json={"sex": "M"})
        api.call("PATCH", "/me/preferences", token, json={
            "timezone": tz, "quiet_hours_start": quiet[0] if quiet else None,
            "quiet_hours_end": quiet[1] if quiet else None})
        # A drink the day before: reminders go to athletes who track water.
        api.call("POST", "/me/water", token, expect=(201,), json={
            "ml": 250, "drunk_at": (day - timedelta(hours=20)).isoformat()})

    def slots(token: str) -> list[str]:
        items = api.call("GET", "/notifications", token, params={"limit": 50}).json()["items"]
        return [n["payload"].get("slot") for n in items if n["kind"] == "hydration_reminder"]

    try:
        dev_clock("set", day.isoformat())
        tokyo_ok = until(lambda: bool(slots(kenji)), BEAT_WAIT_S, step=2.0)
        report.check("reminders: Tokyo athlete reminded at 10:00 Tokyo time (dev clock)",
                     tokyo_ok and slots(kenji) == [f"{day:%Y-%m-%d}T10"], str(slots(kenji)))
        report.check("reminders: New York athlete not reminded at 20:00, her quiet hours", slots(nora) == [],
                     str(slots(nora)))
        later = day + timedelta(hours=14)  # 10:00 in New York, midnight in Tokyo
        dev_clock("set", later.isoformat())
        ny_ok = until(lambda: bool(slots(nora)), BEAT_WAIT_S, step=2.0)
        report.check("reminders: New York athlete reminded at 10:00 New York time",
                     ny_ok and slots(nora) == [f"{later:%Y-%m-%d}T10"], str(slots(nora)))
        report.check("reminders: nothing more for Tokyo at midnight there", slots(kenji) == [f"{day:%Y-%m-%d}T10"],
                     str(slots(kenji)))
    finally:
        dev_clock("reset")


def privacy_part(api: Api, report: Report, ann: str, records: dict[str, list[int]]) -> None:
    bob = api.token("bob")
    api.call("GET", "/me", bob)
    answers: list[str] = []
    for path, ids in records.items():
        for record_id in ids:
            for method in ("GET", "PATCH", "DELETE"):
                kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
                status = api.call(method, f"/{path}/{record_id}", bob, expect=range(100, 600), **kwargs).status_code
                if status != 404:
                    answers.append(f"{method} /{path}/{record_id} → {status}")
            if api.call("GET", f"/{path}/{record_id}", ann, expect=range(100, 600)).status_code != 200:
                answers.append(f"owner lost /{path}/{record_id}")
    listed = sum(len(api.call("GET", f"/{p}", bob).json()["items"]) for p in ("me/meals", "me/water", "me/sleep",
                                                                             "me/body-metrics"))
    total = sum(len(v) for v in records.values())
    report.check("privacy: a second athlete gets 404 on every one of the first's records",
                 not answers and listed == 0, f"{total} records × GET/PATCH/DELETE" + (
                     f"; {answers[:5]}" if answers else ""))


def run(api: Api, report: Report) -> None:
    ann = api.token("ann")
    ann_id = int(api.call("GET", "/me", ann).json()["id"])
    api.call("PATCH", "/me", ann, json={"sex": "M", "birth_year": datetime.now(UTC).year - 30, "weight_kg": 75})
    api.call("PATCH", "/me/health/settings", ann, json={"height_cm": 180})
    banana = foods_part(api, report, ann)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    ids = day_part(api, report, ann, banana, day)
    estimated = sleep_part(api, report, ann, day - timedelta(days=2) + timedelta(hours=20))
    synced = sync_part(api, report, ann, day - timedelta(days=4) + timedelta(hours=22))
    route_part(api, report, ann, ann_id, day - timedelta(days=3) + timedelta(hours=7))
    own_food = api.call("POST", "/foods", ann, expect=(201,), json={"name": "Smoke bar", "energy_kcal": 400}).json()
    metric = api.call("POST", "/me/body-metrics", ann, expect=(201,), json={
        "kind": "weight", "value": 75, "measured_at": day.isoformat()}).json()
    manual = api.call("POST", "/me/sleep", ann, expect=(201,), json={
        "start": (day - timedelta(days=6)).isoformat(), "end": (day - timedelta(days=6, hours=-7)).isoformat()}).json()
    reminders_part(api, report)
    privacy_part(api, report, ann, {"me/meals": ids["meals"], "me/water": ids["water"],
                                    "me/sleep": [estimated, manual["id"], *synced], "me/body-metrics": [metric["id"]],
                                    "foods": [own_food["id"]]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=None, help="the API (default: PORT of .data/stack.env, else 8000)")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"),
                        help="Firebase project id the dev tokens are issued for")
    args = parser.parse_args()
    base_url = args.base_url or f"http://127.0.0.1:{stack_port()}"
    try:
        requests.get(base_url.rstrip("/") + "/readyz", timeout=30).raise_for_status()
    except requests.RequestException as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going? API {base_url})")
        return 2
    report = Report()
    api = Api(base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC against {base_url}", flush=True)
    return run_steps(report, lambda: run(api, report))


def stack_port() -> str:
    """The port `make run` listens on, from the settings file it writes (STACK_DATA_DIR moves it)."""
    env_file = Path(os.environ.get("STACK_DATA_DIR", ROOT / ".data")) / "stack.env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            if line.startswith("PORT="):
                return line.split("=", 1)[1].strip().strip("'\"")
    return os.environ.get("PORT", "8000")


if __name__ == "__main__":
    sys.exit(main())
