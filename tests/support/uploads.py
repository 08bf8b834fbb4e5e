"""Helpers for driving uploads through the API and waiting for the real worker."""

from __future__ import annotations

import io
import time
from typing import Any

from flask.testing import FlaskClient

FINAL = ("ready", "failed", "duplicate")


def upload(client: FlaskClient, headers: dict[str, str], data: bytes, filename: str = "activity.gpx",
           **form: Any) -> Any:
    extra = {k: v for k, v in form.items() if k != "idempotency_key"}
    hdrs = dict(headers)
    if form.get("idempotency_key"):
        hdrs["Idempotency-Key"] = form["idempotency_key"]
    return client.post("/api/v1/uploads", headers=hdrs, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), filename), **extra})


def wait_for(client: FlaskClient, headers: dict[str, str], upload_id: int, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/uploads/{upload_id}", headers=headers).json
        if body["status"] in FINAL:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"upload {upload_id} still {body['status']} after {timeout}s: {body}")
        time.sleep(0.05)


def upload_and_wait(client: FlaskClient, headers: dict[str, str], data: bytes, filename: str = "activity.gpx",
                    **form: Any) -> dict[str, Any]:
    resp = upload(client, headers, data, filename, **form)
    assert resp.status_code == 201, resp.json
    return wait_for(client, headers, resp.json["id"])
