"""Object storage for raw uploads (and, later, media): S3 through boto3, or a local directory.

The local backend is the embedded default for `make run` and most tests; S3 is production and is tested
against an S3-compatible server (moto_server). Both are written once and read by key.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol


class ObjectStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, source: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...


class StorageError(RuntimeError):
    """Object storage could not be reached or answered with an error (transient: retry)."""


class LocalStorage:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"invalid storage key {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename: a crash never leaves a half-written object behind,
        # and fsync before the upload row is committed makes "accepted" mean "on disk".
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: str) -> None:
        """Store a file already on disk (a large export) without reading it into memory."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


class S3Storage:
    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1") -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=30),
        )

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(str(exc)) from exc

    def put_file(self, key: str, source: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # multipart for large files, streamed from disk
            self.client.upload_file(source, self.bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(str(exc)) from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise KeyError(key) from exc
            raise StorageError(str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError(str(exc)) from exc

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


class StorageHandle:
    def __init__(self) -> None:
        self.backend: ObjectStorage | None = None

    def configure(self, backend: str, *, local_dir: str, bucket: str, endpoint_url: str | None, region: str) -> None:
        if backend == "s3":
            self.backend = S3Storage(bucket, endpoint_url=endpoint_url, region=region)
        elif backend == "local":
            self.backend = LocalStorage(local_dir)
        else:
            raise ValueError(f"unknown STORAGE_BACKEND {backend!r} (local or s3)")

    def _configured(self) -> ObjectStorage:
        if self.backend is None:
            raise RuntimeError("object storage is not configured; create the app first")
        return self.backend

    def put(self, key: str, data: bytes) -> None:
        self._configured().put(key, data)

    def put_file(self, key: str, source: str) -> None:
        self._configured().put_file(key, source)

    def get(self, key: str) -> bytes:
        return self._configured().get(key)

    def delete(self, key: str) -> None:
        self._configured().delete(key)

    def ping(self) -> None:
        self._configured().ping()

    def __getattr__(self, name: str) -> object:
        # Anything a backend has beyond the protocol (e.g. S3Storage.ensure_bucket).
        return getattr(self._configured(), name)


storage = StorageHandle()
