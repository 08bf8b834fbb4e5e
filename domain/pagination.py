"""Opaque keyset cursors: stable under inserts (no skipped or repeated items), cheap at any depth.

A cursor is the page's last sort key, JSON, signed with an HMAC of the app's ``SECRET_KEY``: the list queries
compare its values with typed columns, so a crafted one (a string where a timestamp goes, an integer beyond
``bigint``) would reach PostgreSQL as a query error. A cursor we did not issue (edited, truncated, from another
deployment or from before cursors were signed) is refused with a 400 telling the client to start over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

import marshmallow as ma
from flask import current_app

from domain.errors import refuse

DEFAULT_LIMIT = 30
MAX_LIMIT = 200


class PageArgsSchema(ma.Schema):
    cursor = ma.fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(1, MAX_LIMIT))


MAX_CURSOR_CHARS = 512  # our longest (an ISO timestamp and an id, or a score and a member) is under 150
_SIGNATURE_BYTES = 16
INVALID_CURSOR = ("Invalid cursor: pass back the next_cursor of a previous page unchanged, "
                  "or leave it out to start from the first page.")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: bytes) -> bytes:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"cursor\0" + payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def encode_cursor(*values: Any) -> str:
    payload = json.dumps(values, default=str, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_signature(payload))}"


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    values: Any = None
    if len(cursor) <= MAX_CURSOR_CHARS and cursor.count(".") == 1:
        body, signature = cursor.split(".")
        try:
            payload = _unb64(body)
            # Compared as text: base64 ignores the spare bits of its last character, so two texts decode alike.
            if hmac.compare_digest(signature.encode(), _b64(_signature(payload)).encode()):
                values = json.loads(payload)
        except (ValueError, TypeError, binascii.Error):
            values = None
    if not isinstance(values, list) or len(values) != arity:
        refuse(400, INVALID_CURSOR)
    return values
