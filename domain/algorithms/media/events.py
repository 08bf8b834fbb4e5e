"""Reading what arrives on the media events queue: S3 "object created" notifications (possibly wrapped by SNS)
and EventBridge "MediaConvert Job State Change" events. Anything else is recognised as nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class JobStateChange:
    job_id: str
    status: str  # SUBMITTED, PROGRESSING, COMPLETE, ERROR, CANCELED…
    media_id: int | None
    error: str | None


Event = ObjectCreated | JobStateChange


def parse_message(body: str) -> list[Event]:
    """The events in one queue message body; [] for test events, other sources and malformed bodies."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return []
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_message(doc["Message"])  # SNS fan-out in front of the queue
    if not isinstance(doc, dict):
        return []
    if doc.get("source") == "aws.mediaconvert" and isinstance(doc.get("detail"), dict):
        return _job_change(doc["detail"])
    events: list[Event] = []
    for record in doc.get("Records") or []:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3: Any = record.get("s3") or {}
        try:
            events.append(ObjectCreated(
                bucket=str(s3["bucket"]["name"]), key=unquote_plus(str(s3["object"]["key"])),
                etag=str(s3["object"].get("eTag") or s3["object"].get("etag") or "").strip('"'),
                size=int(s3["object"].get("size") or 0)))
        except (KeyError, TypeError, ValueError):
            continue
    return events


def _job_change(detail: dict[str, Any]) -> list[Event]:
    meta = detail.get("userMetadata") or {}
    raw = str(meta.get("media_id", ""))
    return [JobStateChange(job_id=str(detail.get("jobId", "")), status=str(detail.get("status", "")),
                           media_id=int(raw) if raw.isdigit() else None,
                           error=detail.get("errorMessage") or None)]
