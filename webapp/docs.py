"""The documentation pages' assets, served by the API itself from pinned copies: Swagger UI from the
``swagger-ui-bundle`` wheel, ReDoc from the bundle vendored in ``webapp/static/redoc`` (PROVENANCE.md there).
A developer without internet access (or behind a proxy that blocks CDNs) still gets working pages, and the
pages do not change under us when a CDN publishes a new release."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_PREFIX = "/api/v1/docs-assets"
REDOC_DIR = Path(__file__).parent / "static" / "redoc"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
#: Pinned assets never change under a URL: clients may keep them a day.
MAX_AGE_S = 24 * 3600

blp = Blueprint("docs_assets", __name__, url_prefix=ASSETS_PREFIX)


@blp.get("/swagger-ui/<path:filename>")
def swagger_ui(filename: str) -> Response:
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=MAX_AGE_S)


@blp.get("/redoc/<path:filename>")
def redoc(filename: str) -> Response:
    return send_from_directory(REDOC_DIR, filename, max_age=MAX_AGE_S)
