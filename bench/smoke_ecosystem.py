"""Smoke check of the ecosystem issue against a running `make run` stack, one PASS/FAIL line per clause of its
"Done when" (exit status 1 on any failure):

1. stravalib (unmodified) uploads a FIT and a GPX, waits for them, and reads everything back: the athlete, the
   activities list, an activity with its streams, a segment and an effort, zones and stats;
2. GPX, TCX and FIT exports validate (GPX 1.1 and TCX v2 schemas, FIT through fitdecode with its CRC checked) and
   re-import to the same distance and time (within 0.5 %);
3. a share page opens in headless Chromium with the map and the elevation chart drawn and no console error; the
   screenshot is saved (tmp/artefacts/smoke-share-page.png);
4. no point inside the owner's privacy zone in a stranger's view (v1 and v3 activity, streams, GPX export) nor in
   the share page (HTML, scripts, preview image).

    .venv/bin/python bench/smoke_ecosystem.py [--base-url http://127.0.0.1:8000]

New athletes on every run; tokens are development tokens (make run's emulator mode).
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fitdecode
import numpy as np
import requests
import xmlschema

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smoke_support import Api, Failed, Report, until  # noqa: E402

from domain.algorithms.fit_writer import to_fit  # noqa: E402
from domain.algorithms.geo import haversine_m  # noqa: E402
from domain.algorithms.parsing import normalize, parse_bytes  # noqa: E402
from domain.algorithms.polylines import decode  # noqa: E402
from tests.support import share_checks  # noqa: E402
from tests.support.strava_client import strava_client  # noqa: E402
from tests.support.synthetic import synthetic_track, to_gpx  # noqa: E402

SCHEMAS = ROOT / "tests" / "data" / "schemas"
ARTEFACTS = ROOT / "tmp" / "artefacts"
RADIUS_M = 300


def nearest(points: list[tuple[np.ndarray, np.ndarray]], home: tuple[float, float]) -> float:
    best = float("inf")
    for lat, lng in points:
        ok = np.isfinite(lat) & np.isfinite(lng)
        if ok.any():
            best = min(best, float(np.min(haversine_m(home[0], home[1], lat[ok], lng[ok]))))
    return best


def wait_upload(api: Api, token: str, upload_id: int) -> dict[str, Any]:
    """The upload once it is finished (ready, failed or duplicate), or as it stands after two minutes."""
    state: dict[str, Any] = {}

    def finished() -> bool:
        state.update(api.call("GET", f"/uploads/{upload_id}", token).json())
        return state["status"] in ("ready", "failed", "duplicate")

    until(finished, 120)
    return state


def stravalib_clause(api: Api, report: Report) -> dict[str, Any]:
    token = api.token("ann")
    client = strava_client(api.base.removesuffix("/api/v1"), token)
    me = client.get_athlete()
    ride = synthetic_track(seed=101, n_points=1800, speed_mps=7.0, sport="cycling", with_power=True, noise_m=2.0)
    ride.name = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_activity = client.upload_activity(io.BytesIO(to_fit(ride, "cycling")), data_type="fit",
                                              name="Smoke ride", external_id="smoke-fit").wait(timeout=120,
                                                                                               poll_interval=0.3)
    token_headers = {"Authorization": f"Bearer {token}"}
    seg = requests.post(f"{api.base}/segments", headers=token_headers, timeout=30,
                        json={"name": "Smoke climb", "activity_id": fit_activity.id, "start_index": 300,
                              "end_index": 900})
    again = synthetic_track(seed=101, n_points=1800, speed_mps=7.0, sport="cycling", noise_m=3.0,
                            start_time=float(ride.time[0]) + 86400)
    again.name = None
    gpx_activity = client.upload_activity(io.BytesIO(to_gpx(again)), data_type="gpx",
                                          external_id="smoke-gpx").wait(timeout=120, poll_interval=0.3)
    listed = {a.id for a in client.get_activities(limit=10)}
    detailed = client.get_activity(gpx_activity.id)
    streams = client.get_activity_streams(gpx_activity.id, types=["time", "latlng", "distance", "altitude",
                                                                   "heartrate", "watts"])
    segment = client.get_segment(seg.json()["id"]) if seg.status_code == 201 else None
    # Earlier runs' segments lie on the same route: pick this run's.
    efforts = [e for e in detailed.segment_efforts or [] if segment is not None and e.segment.id == segment.id]
    effort = client.get_segment_effort(efforts[0].id) if efforts else None
    zones = client.get_athlete_zones()
    stats = client.get_athlete_stats(me.id)
    ok = (listed == {fit_activity.id, gpx_activity.id} and len(streams["time"].data) == len(again)
          and segment is not None and effort is not None and effort.segment.id == segment.id
          and fit_activity.sport_type.root == "Ride" and stats.all_ride_totals.count == 2
          and len(zones.heart_rate.zones.root) == 5)
    report.check("1. stravalib uploads a FIT and a GPX and reads everything back (athlete, list, activity, "
                 "streams, segment, effort, zones, stats)", ok,
                 f"activities {sorted(listed)}, {len(streams)} streams, segment {segment and segment.id}, "
                 f"effort {effort and effort.id} ({effort and effort.elapsed_time} s), "
                 f"{float(fit_activity.distance) / 1000:.2f} km ride, timezone {detailed.timezone}")
    return {"token": token}


def exports_clause(api: Api, report: Report) -> None:
    token = api.token("exporter")
    track = synthetic_track(seed=102, n_points=2400, speed_mps=3.1, with_cadence=True)
    track.name = None
    up = api.call("POST", "/uploads", token, files={"file": ("run.gpx", to_gpx(track))}).json()
    body = wait_upload(api, token, up["id"])
    original = api.call("GET", f"/activities/{body['activity_id']}", token).json()
    schemas = {"gpx": xmlschema.XMLSchema(str(SCHEMAS / "gpx-1.1.xsd")),
               "tcx": xmlschema.XMLSchema(str(SCHEMAS / "TrainingCenterDatabasev2.xsd"))}
    details = []
    ok = True
    for fmt in ("gpx", "tcx", "fit"):
        data = api.call("GET", f"/activities/{body['activity_id']}/export?format={fmt}", token).content
        if fmt in schemas:
            valid = schemas[fmt].is_valid(data.decode())
        else:
            try:
                with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.ENABLED) as reader:
                    records = sum(1 for f in reader if isinstance(f, fitdecode.FitDataMessage) and f.name == "record")
                valid = records == len(track)
            except fitdecode.FitError:
                valid = False
        again = api.call("POST", "/uploads", token, files={"file": (f"again.{fmt}", data)}).json()
        state = wait_upload(api, token, again["id"])
        copy = api.call("GET", f"/activities/{state['activity_id']}", token).json() if state.get(
            "activity_id") else {}
        dd = abs(copy.get("distance_m", 0) - original["distance_m"]) / original["distance_m"]
        dt = abs(copy.get("elapsed_time_s", 0) - original["elapsed_time_s"]) / original["elapsed_time_s"]
        ok = ok and valid and dd <= 0.005 and dt <= 0.005
        details.append(f"{fmt}: {'valid' if valid else 'INVALID'}, {len(data) / 1024:.0f} KB, re-import "
                       f"distance {dd * 100:.3f} % time {dt * 100:.3f} % off")
    report.check("2. GPX, TCX and FIT exports validate and re-import to the same distance and time (≤ 0.5 %)", ok,
                 "; ".join(details))


def share_and_privacy_clauses(api: Api, report: Report) -> None:
    owner, stranger = api.token("owner"), api.token("stranger")
    track = synthetic_track(seed=103, n_points=5000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    api.call("POST", "/me/privacy-zones", owner, json={"lat": home[0], "lng": home[1], "radius_m": RADIUS_M})
    api.call("GET", "/me", stranger)
    up = api.call("POST", "/uploads", owner, files={"file": ("run.gpx", to_gpx(track))}).json()
    activity_id = wait_upload(api, owner, up["id"])["activity_id"]
    url = api.call("POST", f"/activities/{activity_id}/share", owner).json()["url"]

    # 3. The page in headless Chromium.
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    html = ""
    if not (chromium and driver_bin):
        report.check("3. share page in headless Chromium with map and elevation chart; screenshot saved", False,
                     "chromium / chromedriver not installed")
    else:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=412,1100"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_bin), options=options)
        try:
            driver.get(url)
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTEFACTS / "smoke-share-page.png"
            driver.save_screenshot(str(shot))
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            route = driver.execute_script("return Array.from(document.querySelectorAll('#map path.route'))"
                                          ".reduce((s, p) => s + p.getTotalLength(), 0)")
            chart = driver.execute_script("const p = document.querySelector('#elevation path.profile-line');"
                                          " return p ? p.getTotalLength() : 0")
            scripts = driver.execute_script("return document.scripts.length")
            html = driver.page_source.replace("&quot;", '"')
        finally:
            driver.quit()
        report.check("3. share page in headless Chromium with map and elevation chart; screenshot saved",
                     not errors and route > 100 and chart > 100 and shot.stat().st_size > 0,
                     f"{shot.relative_to(ROOT)}, route drawn {route:.0f} px, chart {chart:.0f} px, "
                     f"{len(errors)} console errors, {scripts} scripts")

    # 4. Nothing inside the zone: the stranger's views, their export, the page and its preview image.
    view = api.call("GET", f"/activities/{activity_id}", stranger).json()
    lines = [decode(p) for p in view["map"]["polylines"]]
    pts = [decode(view["map"]["polyline"]), decode(view["map"]["summary_polyline"]), *lines]
    pts += [(np.array([p[0]]), np.array([p[1]])) for p in (view["start_latlng"], view["end_latlng"]) if p]
    latlng = np.array([p for p in api.call("GET", f"/activities/{activity_id}/streams?keys=latlng", stranger)
                       .json()["latlng"]["data"] if p is not None])
    pts.append((latlng[:, 0], latlng[:, 1]))
    v3 = requests.get(f"{api.base.removesuffix('/api/v1')}/api/v3/activities/{activity_id}",
                      headers={"Authorization": f"Bearer {stranger}"}, timeout=30).json()
    pts += [decode(v3["map"]["polyline"]), (np.array([v3["start_latlng"][0]]), np.array([v3["start_latlng"][1]]))]
    exported = normalize(parse_bytes(api.call("GET", f"/activities/{activity_id}/export?format=gpx", stranger)
                                     .content, "gpx"))
    pts.append((exported.lat, exported.lon))
    stranger_min = nearest(pts, home)
    page = html or requests.get(url, timeout=30).text
    plat, plng = share_checks.drawn_route(page, lines)
    png = requests.get(url + "/preview.png", timeout=30).content
    ilat, ilng, m_per_px = share_checks.preview_route(png, lines)
    hidden = haversine_m(home[0], home[1], track.lat, track.lon) < RADIUS_M
    raw_leak = any(f"{la:.4f}" in page for la in track.lat[hidden][::25])
    page_min, image_min = share_checks.nearest_m(plat, plng, home), share_checks.nearest_m(ilat, ilng, home)
    ok = (stranger_min > RADIUS_M and page_min > RADIUS_M and image_min > RADIUS_M - 4 * m_per_px
          and not raw_leak and plat.size > 0 and ilat.size > 0 and "<script" not in page)
    report.check("4. no point inside the owner's privacy zone in a stranger's view or on the share page", ok,
                 f"zone r = {RADIUS_M} m; nearest point to the home: stranger's views + export "
                 f"{stranger_min:.0f} m, page map {page_min:.0f} m ({plat.size} vertices), preview image "
                 f"{image_min:.0f} m ({ilat.size} route pixels, {m_per_px:.1f} m/px); raw hidden coordinate "
                 f"in page: {raw_leak}")
    api.call("DELETE", f"/activities/{activity_id}/share", owner)
    gone = requests.get(url, timeout=30).status_code
    report.check("   a revoked link is a 404 at once", gone == 404, f"GET {url.split('/a/')[0]}/a/… → {gone}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
                        help="the API (make run: port 8000, or $PORT)")
    parser.add_argument("--project", default=os.environ.get("FIREBASE_PROJECT_ID", "demo-strava-plus-one"))
    args = parser.parse_args()
    try:
        requests.get(args.base_url.rstrip("/") + "/readyz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"FAIL  stack reachable — {exc} (is `make run` going at {args.base_url}?)")
        return 2
    report = Report()
    api = Api(args.base_url, args.project, f"{int(time.time())}-{secrets.token_hex(3)}")
    started = time.monotonic()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC against {args.base_url}", flush=True)
    for clause in (stravalib_clause, exports_clause, share_and_privacy_clauses):
        try:
            clause(api, report)
        except (Failed, Exception) as exc:  # one clause failing must not hide the others
            report.check(f"{clause.__name__} completed", False, f"{type(exc).__name__}: {exc}")
    print(f"{report.passed} passed, {report.failed} failed in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
