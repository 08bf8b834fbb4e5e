"""Opaque keyset cursors: stable under inserts (no skipped or repeated items), cheap at any depth."""

from __future__ import annotations

import base64
import json
from typing import Any

import marshmallow as ma

from domain.errors import refuse

DEFAULT_LIMIT = 30
MAX_LIMIT = 200


class PageArgsSchema(ma.Schema):
    cursor = ma.fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(1, MAX_LIMIT))


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        refuse(400, "Invalid cursor: pass back the next_cursor of a previous page unchanged.")
    return values
