"""Smaller and fewer bytes on the wire, and browsers allowed in: compression, ETags and CORS.

- **Compression** (flask-compress): brotli or gzip, as the client's ``Accept-Encoding`` asks, for JSON and text
  bodies of at least ``COMPRESS_MIN_SIZE`` bytes.
- **ETag / If-None-Match**: every successful ``GET`` of JSON under /api/v1 carries a weak ETag of its body (weak:
  the same representation, whatever its content encoding), and a request whose ``If-None-Match`` names it gets
  ``304 Not Modified`` without a body. A body differs per viewer, so the ETag does too; ``Cache-Control:
  private, no-cache`` keeps shared caches out and makes clients revalidate.
- **CORS** (flask-cors): web clients from ``CORS_ORIGINS`` may call /api/v1 (a bearer token, no cookies), read
  the ETag, request id and Retry-After headers, and open the socket (see ``origin_allowed``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_compress import Compress
from flask_cors import CORS

EXPOSED_HEADERS = ["ETag", "X-Request-ID", "Retry-After", "WWW-Authenticate"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match", "X-Request-ID"]


def register_http_caching(app: Flask) -> None:
    # after_request hooks run last-registered first: the ETag is computed (and a 304 answered) on the plain
    # body, before compression (registered first, so it runs after).
    Compress(app)

    @app.after_request
    def _etag(response: Response) -> Response:
        if (request.method in {"GET", "HEAD"} and response.status_code == 200 and request.path.startswith("/api/")
                and response.mimetype == "application/json" and not response.is_streamed):
            response.add_etag(weak=True)
            response.headers.setdefault("Cache-Control", "private, no-cache")
            response.make_conditional(request)
        return response

    origins = list(app.config["CORS_ORIGINS"])
    if origins:
        CORS(app, resources={r"/api/*": {"origins": origins}}, expose_headers=EXPOSED_HEADERS,
             allow_headers=ALLOWED_HEADERS, supports_credentials=False, max_age=600)


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """May a socket handshake from this ``Origin`` go on? Native apps send none; a browser page may connect from
    the API's own origin or from one in ``CORS_ORIGINS`` ("*" allows any): another site's page may not open a
    socket in its visitors' name."""
    if not origin:
        return True
    if "*" in allowed or origin in allowed:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == (host or "").lower()
