"""What an upload request may be, and the pre-signed POST policy that holds the phone to it.

S3 checks a POST against the policy we sign: the exact declared size (``content-length-range``), the exact content
type and the key. ``policy_allows`` evaluates a policy the way S3 does for those conditions, so tests can show a
policy refuses a different size or type (S3-compatible test servers do not enforce policies).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.algorithms.media import MediaRejected
from domain.algorithms.media.sniff import PHOTO_TYPES, VIDEO_TYPES


class UploadRefused(MediaRejected):
    """A request the API answers with a 4xx: ``status`` and a sentence."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class Limits:
    photo_max_bytes: int
    video_max_bytes: int
    multipart_threshold: int
    part_bytes: int


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB" if n < 1024 ** 3 else f"{n / 1024 ** 3:,.0f} GB"


def plan_upload(kind: str, content_type: str, size_bytes: int, limits: Limits) -> str:
    """``post`` (one pre-signed POST) or ``multipart``; UploadRefused for what no product accepts."""
    allowed = PHOTO_TYPES if kind == "photo" else VIDEO_TYPES
    if content_type not in allowed:
        raise UploadRefused(422, f"A {kind} must be one of {', '.join(sorted(allowed))}, not {content_type!r}.",
                            "content_type")
    if size_bytes <= 0:
        raise UploadRefused(422, "The file is empty.", "size_bytes")
    limit = limits.photo_max_bytes if kind == "photo" else limits.video_max_bytes
    if size_bytes > limit:
        raise UploadRefused(413, f"A {kind} may be at most {_mib(limit)}; this one is {_mib(size_bytes)}.",
                            "size_bytes")
    if kind == "video" and size_bytes > limits.multipart_threshold:
        return "multipart"
    return "post"


def part_count(size_bytes: int, part_bytes: int) -> int:
    return max(1, -(-size_bytes // part_bytes))


def post_policy(content_type: str, size_bytes: int) -> tuple[dict[str, str], list[Any]]:
    """(fields, conditions) for a pre-signed POST of exactly this size and type (the key and bucket are added by
    the signer)."""
    return ({"Content-Type": content_type},
            [{"Content-Type": content_type}, ["content-length-range", size_bytes, size_bytes]])


def decode_policy(fields: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(fields["policy"])))


def policy_allows(policy: dict[str, Any], form: dict[str, str], *, bucket: str, size_bytes: int,
                  now: datetime | None = None) -> bool:
    """Whether S3 would accept a POST of ``form`` fields and a file of ``size_bytes`` under ``policy``.

    Conditions: ``{"field": value}`` and ``["eq", "$field", value]`` (exact), ``["starts-with", "$field", prefix]``
    and ``["content-length-range", min, max]``; the policy's ``expiration`` must be in the future.
    """
    now = now or datetime.now(UTC)
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if now >= expires:
        return False
    values = {k.lower(): v for k, v in form.items()} | {"bucket": bucket}
    for cond in policy.get("conditions", []):
        if isinstance(cond, dict):
            (name, expected), = cond.items()
            if values.get(name.lower()) != expected:
                return False
        elif cond[0] == "content-length-range":
            if not int(cond[1]) <= size_bytes <= int(cond[2]):
                return False
        elif cond[0] == "eq":
            if values.get(cond[1].lstrip("$").lower()) != cond[2]:
                return False
        elif cond[0] == "starts-with":
            if not str(values.get(cond[1].lstrip("$").lower(), "")).startswith(cond[2]):
                return False
        else:
            return False
    return True
