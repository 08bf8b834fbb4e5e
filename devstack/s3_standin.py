"""The embedded stand-in for the media bucket: an S3-compatible server with SQS (moto's server mode), set up as
production is: the bucket, a queue, and the bucket's notification configuration that reports every new original
(``media/…/original``) on that queue. The phone-style flow then works on one machine exactly as on AWS: a
pre-signed POST straight to storage → an S3 event on SQS → the media-events consumer → the media chain.

Its objects live in the server's memory: they are gone when ``make run`` stops (the database rows stay; such
items answer with URLs to objects that no longer exist until they are deleted).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from devstack.embedded import free_port

#: moto's fixed account: the queue's ARN names it.
ACCOUNT_ID = "123456789012"
#: Browsers (a web client) may POST and PUT straight to the bucket too.
CORS = {"CORSRules": [{"AllowedMethods": ["GET", "POST", "PUT"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"],
                       "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]}


def provision(endpoint_url: str, bucket: str, queue_name: str, region: str = "us-east-1") -> str:
    """Create the bucket, the queue and the notification configuration (idempotent); the queue's URL."""
    kwargs: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region}
    s3 = boto3.client("s3", **kwargs)
    sqs = boto3.client("sqs", **kwargs)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS)
    queue_url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue_name}"
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
        "Id": "media-originals", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "media/"},
                                           {"Name": "suffix", "Value": "/original"}]}},
    }]})
    return queue_url


@dataclass
class S3Standin:
    """``moto_server`` on 127.0.0.1:``port`` (0: the first free port from 9390)."""

    port: int = 0
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> str:
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        if binary is None:
            raise RuntimeError("moto_server is not installed (the embedded extra: pip install 'moto[server]')")
        self.port = self.port or free_port(9390)
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)], stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                requests.get(self.url + "/moto-api/", timeout=0.5)
                return self.url
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server did not start on {self.url}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def describe(url: str, bucket: str, queue_url: str) -> str:
    return json.dumps({"s3": url, "bucket": bucket, "queue": queue_url})
