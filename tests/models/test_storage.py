"""Object storage through the real boto3 client against an S3-compatible server (moto_server), and the
local-directory backend the embedded stack uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack.embedded import free_port
from models.storage import LocalStorage, S3Storage, StorageError


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if binary is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port(25000 + (os.getpid() % 1000))
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(url, timeout=0.5)
            break
        except requests.RequestException:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    yield url
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(10)


def test_s3_round_trip(s3_endpoint):
    store = S3Storage("uploads-test", endpoint_url=s3_endpoint)
    store.ensure_bucket()
    store.ping()
    store.put("uploads/1/abc.gpx", b"<gpx/>")
    assert store.get("uploads/1/abc.gpx") == b"<gpx/>"
    store.delete("uploads/1/abc.gpx")
    with pytest.raises(KeyError):
        store.get("uploads/1/abc.gpx")


def test_s3_errors_are_storage_errors(s3_endpoint):
    store = S3Storage("no-such-bucket-here", endpoint_url=s3_endpoint)
    with pytest.raises(StorageError):
        store.put("k", b"x")
    dead = S3Storage("b", endpoint_url=f"http://127.0.0.1:{free_port(26000)}")
    with pytest.raises(StorageError):
        dead.get("k")


def test_upload_through_the_api_lands_in_s3(s3_endpoint, client, login, app):
    from models.storage import storage
    from tests.support.uploads import upload

    previous = storage.backend
    s3 = S3Storage("api-uploads", endpoint_url=s3_endpoint)
    s3.ensure_bucket()
    storage.backend = s3
    try:
        ann, ann_id = login("ann")
        resp = upload(client, ann, b'<?xml version="1.0"?><gpx version="1.1"></gpx>', "a.gpx")
        assert resp.status_code == 201
        keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket="api-uploads").get("Contents", [])]
        assert keys == [f"uploads/{ann_id}/" + keys[0].rsplit("/", 1)[1]]
    finally:
        storage.backend = previous


def test_storage_outage_at_upload_is_503_and_nothing_is_saved(client, login, app, db_tx):
    from sqlalchemy import text

    from models.storage import storage
    from tests.support.uploads import upload

    previous = storage.backend
    storage.backend = S3Storage("b", endpoint_url=f"http://127.0.0.1:{free_port(27000)}")
    try:
        ann, _ = login("ann")
        resp = upload(client, ann, b'<?xml version="1.0"?><gpx version="1.1"></gpx>', "a.gpx")
    finally:
        storage.backend = previous
    assert resp.status_code == 503 and resp.json["code"] == 503
    assert db_tx.execute(text("SELECT count(*) FROM uploads")).scalar() == 0


def test_local_storage_is_atomic_and_refuses_escaping_keys(tmp_path):
    store = LocalStorage(str(tmp_path))
    store.put("uploads/1/x.gpx", b"data")
    assert store.get("uploads/1/x.gpx") == b"data"
    assert not list(tmp_path.rglob(".tmp-*"))
    with pytest.raises(ValueError):
        store.put("../../etc/passwd", b"x")
    with pytest.raises(KeyError):
        store.get("uploads/1/missing.gpx")
