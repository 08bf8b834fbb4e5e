"""A share page in a real browser (headless Chromium through Selenium) against a running server: it renders
without a console error, the map and the elevation chart are drawn, nothing inside the owner's privacy zone is in
the page, its scripts or its preview image, and a revoked link shows the 404 page. Screenshots are kept under
tmp/artefacts/ for whoever reads the run.

Needs Debian's ``chromium`` and ``chromium-driver`` (CI installs them); skipped, saying so, without them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests

from tests.support import share_checks
from tests.support.processes import ROOT, gunicorn, wait_until
from tests.support.synthetic import synthetic_track, to_gpx

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTEFACTS = ROOT / "tmp" / "artefacts"
RADIUS_M = 300

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="headless Chromium is not installed (apt-get install chromium chromium-driver)")


@pytest.fixture
def server(committed, celery_worker):
    with gunicorn("webapp:create_app()", dict(os.environ), workers=1) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=412,1400", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _shared_run(server: str, token: str) -> tuple[dict[str, str], int, str, tuple[float, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{server}/api/v1"
    track = synthetic_track(seed=71, n_points=5000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    assert requests.post(f"{api}/me/privacy-zones", headers=headers, timeout=10,
                         json={"lat": home[0], "lng": home[1], "radius_m": RADIUS_M}).status_code == 201
    up = requests.post(f"{api}/uploads", headers=headers, files={"file": ("run.gpx", to_gpx(track))}, timeout=30)
    assert up.status_code == 201, up.text
    status: dict[str, object] = {}

    def ready() -> bool:
        status.update(requests.get(f"{api}/uploads/{up.json()['id']}", headers=headers, timeout=10).json())
        return status["status"] in ("ready", "failed")

    assert wait_until(ready, 60, step=0.2) and status["status"] == "ready", status
    activity_id = int(status["activity_id"])  # type: ignore[call-overload]
    link = requests.post(f"{api}/activities/{activity_id}/share", headers=headers, timeout=10).json()
    return headers, activity_id, link["url"], home


def test_share_page_in_headless_chromium(server, browser, make_token):
    from selenium.webdriver.common.by import By

    headers, activity_id, url, home = _shared_run(server, make_token("browser-ann@example.com"))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(url)
    assert browser.title.endswith("browser-ann")
    browser.save_screenshot(str(ARTEFACTS / "share-page.png"))

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    route_len = browser.execute_script(
        "return Array.from(document.querySelectorAll('#map path.route')).map(p => p.getTotalLength())")
    # Every piece is drawn (a path with no valid point has no length); the pieces come from the activity's own
    # randomized privacy disc, which can leave a sliver of a few pixels, so only the longest must be long.
    assert route_len and all(length > 0 for length in route_len) and max(route_len) > 100, route_len
    box = browser.find_element(By.ID, "map").rect
    assert box["width"] > 300 and box["height"] > 150  # fits a phone's width, drawn at a readable size
    chart = browser.execute_script(
        "const p = document.querySelector('#elevation path.profile-line'); return p ? p.getTotalLength() : 0")
    assert chart > 100
    assert browser.execute_script("return document.scripts.length") == 0

    # What the browser holds (the DOM as rendered, not only what was sent) maps back outside the zone.
    html = browser.page_source
    stranger = requests.get(f"{server}/api/v1/activities/{activity_id}",
                            headers={"Authorization": f"Bearer {make_token('browser-bob@example.com')}"},
                            timeout=10).json()
    from domain.algorithms.polylines import decode
    lines = [decode(p) for p in stranger["map"]["polylines"]]
    lat, lng = share_checks.drawn_route(html.replace("&quot;", '"'), lines)
    assert lat.size > 100 and share_checks.nearest_m(lat, lng, home) > RADIUS_M
    image_url = browser.find_element(By.CSS_SELECTOR, 'meta[property="og:image"]').get_attribute("content")
    png = requests.get(image_url, timeout=10)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    (ARTEFACTS / "share-preview.png").write_bytes(png.content)
    plat, plng, metres_per_px = share_checks.preview_route(png.content, lines)
    assert plat.size > 100 and share_checks.nearest_m(plat, plng, home) > RADIUS_M - 4 * metres_per_px

    assert requests.delete(f"{server}/api/v1/activities/{activity_id}/share", headers=headers,
                           timeout=10).status_code == 204
    browser.get(url)
    assert browser.title == "Link not available"
    assert "not available" in browser.find_element(By.TAG_NAME, "h1").text
    browser.save_screenshot(str(ARTEFACTS / "share-revoked.png"))
    assert requests.get(url, timeout=10).status_code == 404
