"""Media tests run against a real S3-compatible server with SQS (moto_server, started here on a free port and set
up exactly as `make run` sets it up: bucket, queue, notification configuration) and the real worker."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from devstack.embedded import free_port
from devstack.s3_standin import S3Standin, provision
from tests.support import media as samples

BUCKET = "media-test"


@pytest.fixture(scope="session")
def media_s3(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from models.media_storage import media_bucket

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "test")
    # A start port of its own per process: parallel test workers (and other runs) never race for one port.
    port = free_port(30000 + os.getpid() % 20000)
    standin = S3Standin(port=port, log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    url = standin.start()
    queue = f"media-events-{os.getpid()}"
    queue_url = provision(url, BUCKET, queue)
    saved = {k: app.config[k] for k in ("MEDIA_BUCKET", "MEDIA_S3_ENDPOINT_URL", "MEDIA_EVENTS_QUEUE_URL")}
    app.config.update(MEDIA_BUCKET=BUCKET, MEDIA_S3_ENDPOINT_URL=url, MEDIA_EVENTS_QUEUE_URL=queue_url)
    media_bucket.configure(BUCKET, endpoint_url=url, region="us-east-1")
    yield {"url": url, "bucket": BUCKET, "queue_url": queue_url}
    app.config.update(saved)
    standin.stop()


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return samples.make_videos(tmp_path_factory.mktemp("videos"))


@pytest.fixture
def drain_events(app: Flask, media_s3: dict[str, str]) -> Iterator[Callable[..., int]]:
    """Run the media-events consumer's poll (what the `media-events` process does) until the queue is quiet."""
    from domain.media import events

    def drain(wait_s: int = 1, rounds: int = 3) -> int:
        handled = 0
        with app.app_context():
            for _ in range(rounds):
                got = events.poll_once(media_s3["queue_url"], wait_s=wait_s)
                handled += got
                if got == 0 and handled:
                    break
        return handled

    with app.app_context():  # start empty: events of earlier tests are theirs
        while events.poll_once(media_s3["queue_url"], wait_s=0):
            pass
    yield drain


def post_upload(created: dict[str, Any], data: bytes, content_type: str | None = None) -> requests.Response:
    """What the phone does with a pre-signed POST: the fields, then the file, straight to storage."""
    upload = created["upload"]
    fields = dict(upload["fields"])
    if content_type:
        fields["Content-Type"] = content_type
    return requests.post(upload["url"], data=fields, files={"file": ("upload", data)}, timeout=30)


def wait_state(client: Any, headers: dict[str, str], media_id: int, states: tuple[str, ...] = ("ready", "failed"),
               timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get(f"/api/v1/media/{media_id}", headers=headers).json
        if body.get("state") in states or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def keys_under(prefix: str) -> list[str]:
    from models.media_storage import media_bucket

    return list(media_bucket.keys(prefix))
