"""The documentation pages render offline: Swagger UI and ReDoc load only pinned assets the app serves itself.

Headless Chromium opens both pages from a real server with every host but 127.0.0.1 made unresolvable, and
waits until the operations are on the page (a blank page is what a CDN-loaded viewer shows offline).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webapp.docs import REDOC_DIR

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REDOC_SHA256 = "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b"


def test_pages_reference_only_assets_served_here(app: Any) -> None:
    client = app.test_client()
    for page in ("/api/v1/docs", "/api/v1/redoc"):
        html = client.get(page).get_data(as_text=True)
        assert "http://" not in html and "https://" not in html, f"{page} loads something from elsewhere"
    for asset in ("/api/v1/docs-assets/swagger-ui/swagger-ui-bundle.js",
                  "/api/v1/docs-assets/swagger-ui/swagger-ui.css",
                  "/api/v1/docs-assets/redoc/redoc.standalone.js"):
        resp = client.get(asset)
        assert resp.status_code == 200 and len(resp.data) > 100_000, asset
        assert "max-age" in resp.headers.get("Cache-Control", "")


def test_the_vendored_redoc_bundle_is_the_one_its_provenance_names() -> None:
    data = (Path(REDOC_DIR) / "redoc.standalone.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == REDOC_SHA256
    assert REDOC_SHA256 in (Path(REDOC_DIR) / "PROVENANCE.md").read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2000",
                # Offline: no name but the loopback address resolves, so a CDN reference could not load.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait_for(driver: Any, css: str, minimum: int, timeout: float = 60) -> int:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= minimum)
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def test_swagger_ui_renders_the_operations_offline(ws_server: Any, browser: Any) -> None:
    browser.get(f"{ws_server.url}/api/v1/docs")
    count = _wait_for(browser, ".opblock", 60)
    assert count >= 60
    assert "getActivity" in browser.page_source or "/api/v1/activities/{activity_id}" in browser.page_source


def test_redoc_renders_the_operations_offline(ws_server: Any, browser: Any) -> None:
    browser.get(f"{ws_server.url}/api/v1/redoc")
    count = _wait_for(browser, "[data-section-id^='operation/']", 60)
    assert count >= 60
    assert "operation/getActivity" in browser.page_source
