"""The media bucket through the S3 API (AWS, or the S3-compatible server ``make run`` starts), and the SQS queue
its events arrive on.

Unlike raw activity files, media always goes through S3: the phone uploads straight to the bucket with a
pre-signed POST (or pre-signed multipart part URLs), S3 reports the new object on SQS, and readers get short-lived
pre-signed GET URLs. Nothing here decides who may do what; the domain does (domain.media).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.storage import StorageError


def _client(service: str, endpoint_url: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    # s3v4 signatures everywhere: pre-signed POST policies and GET URLs then look as they do on AWS.
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, config=BotoConfig(
        signature_version="s3v4" if service == "s3" else None, connect_timeout=3, read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"}))


class MediaBucket:
    def __init__(self) -> None:
        self._s3: Any = None
        self._sqs: Any = None
        self.bucket = ""
        self.region = "us-east-1"
        self.endpoint_url: str | None = None
        self.sqs_endpoint_url: str | None = None

    def configure(self, bucket: str, *, endpoint_url: str | None, region: str,
                  sqs_endpoint_url: str | None = None) -> None:
        self.bucket, self.endpoint_url, self.region = bucket, endpoint_url, region
        self.sqs_endpoint_url = sqs_endpoint_url or endpoint_url
        self._s3 = self._sqs = None  # made on first use, in the process (and fork) that uses them

    def reset_after_fork(self) -> None:
        self._s3 = self._sqs = None

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            if not self.bucket:
                raise RuntimeError("the media bucket is not configured; create the app first")
            self._s3 = _client("s3", self.endpoint_url, self.region)
        return self._s3

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = _client("sqs", self.sqs_endpoint_url, self.region)
        return self._sqs

    # --- uploads ----------------------------------------------------------------------------------------------

    def presigned_post(self, key: str, *, fields: dict[str, str], conditions: list[Any],
                       expires_s: int) -> dict[str, Any]:
        return dict(self.s3.generate_presigned_post(self.bucket, key, Fields=fields, Conditions=conditions,
                                                    ExpiresIn=expires_s))

    def create_multipart(self, key: str, content_type: str) -> str:
        return str(self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)["UploadId"])

    def presigned_part_url(self, key: str, upload_id: str, part_number: int, expires_s: int) -> str:
        return str(self.s3.generate_presigned_url("upload_part", ExpiresIn=expires_s, Params={
            "Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number}))

    def list_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        while True:
            page = self.s3.list_parts(**kwargs)
            parts += [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p.get("Size", 0)}
                      for p in page.get("Parts", [])]
            if not page.get("IsTruncated"):
                return parts
            kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})

    def abort_multipart(self, key: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"NoSuchUpload", "404"}:
                raise

    def open_multipart_uploads(self, prefix: str) -> list[tuple[str, str]]:
        """(key, upload id) of the multipart uploads still open under ``prefix``."""
        page = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]

    # --- objects ----------------------------------------------------------------------------------------------

    def head(self, key: str) -> dict[str, Any] | None:
        """{size, content_type, etag} of the object, or None when there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            meta = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise StorageError(str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError(str(exc)) from exc
        return {"size": int(meta["ContentLength"]), "content_type": meta.get("ContentType", ""),
                "etag": str(meta.get("ETag", "")).strip('"')}

    def download(self, key: str, path: Path, *, max_bytes: int) -> int:
        """Write the object to ``path`` (never more than ``max_bytes``: the declared size is not trusted)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            written = 0
            with path.open("wb") as out:
                for chunk in iter(lambda: body.read(1024 * 1024), b""):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ValueError(f"object {key} is larger than {max_bytes} bytes")
                    out.write(chunk)
            return written
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise KeyError(key) from exc
            raise StorageError(str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError(str(exc)) from exc

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with path.open("rb") as body:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(str(exc)) from exc

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(str(exc)) from exc

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise KeyError(key) from exc
            raise StorageError(str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError(str(exc)) from exc

    def keys(self, prefix: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield str(obj["Key"])

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` and abort its open multipart uploads; the number deleted."""
        for key, upload_id in self.open_multipart_uploads(prefix):
            self.abort_multipart(key, upload_id)
        keys = list(self.keys(prefix))
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
        return len(keys)

    def signed_get_url(self, key: str, expires_s: int, *, download_name: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
        return str(self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s))

    # --- events -----------------------------------------------------------------------------------------------

    def receive_events(self, queue_url: str, *, wait_s: int = 20, max_messages: int = 10,
                       visibility_timeout_s: int = 120) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages,
                                          WaitTimeSeconds=wait_s, VisibilityTimeout=visibility_timeout_s)
        return [{"id": m["MessageId"], "receipt": m["ReceiptHandle"], "body": m["Body"]}
                for m in answer.get("Messages", [])]

    def delete_event(self, queue_url: str, receipt: str) -> None:
        self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)


media_bucket = MediaBucket()
