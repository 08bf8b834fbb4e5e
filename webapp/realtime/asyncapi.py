"""The socket's machine-readable description (AsyncAPI 2.6), built from the frame registry the server dispatches
and validates with (``webapp.realtime.frames.FRAME_SPECS``): each client frame's payload is the JSON Schema of the
marshmallow schema its handler loads it with. Served at ``/api/v1/asyncapi.json``, beside the OpenAPI document;
tests/webapp/test_asyncapi.py keeps the two in step with the handlers."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Flask, current_app

from webapp.openapi import ContractMarshmallowPlugin, finalize
from webapp.realtime.frames import FRAME_SPECS
from webapp.realtime.hub import CLOSE_TOO_SLOW, CLOSE_TRY_AGAIN, CLOSE_UNAUTHENTICATED

WS_PATH = "/api/v1/ws"
ENVELOPE = {"type": "string", "description": "The frame type"}
REF = {"type": "string", "maxLength": 64,
       "description": "Chosen by the client; copied onto the reply (and onto an error) so it can match them"}
ERROR_PAYLOAD = {
    "type": "object", "required": ["type", "code", "message", "status"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]}, "ref": REF,
        "code": {"type": "string", "description": "Machine-readable: invalid, not_found, forbidden, rate_limited…"},
        "message": {"type": "string"}, "status": {"type": "integer", "description": "The REST status it matches"},
        "errors": {"type": "object", "description": "Per field, the problems found (like the REST Error)"},
        "retry_after": {"type": "number"}},
}


def _name(frame_type: str) -> str:
    return "".join(part.title() for part in frame_type.replace("-", ".").split(".")) + "Frame"


def build(schema_name_resolver: Any) -> dict[str, Any]:
    """The AsyncAPI document: one message per client frame type (publish) and per reply (subscribe)."""
    plugin = ContractMarshmallowPlugin(schema_name_resolver=schema_name_resolver)
    spec = APISpec("frames", "1", "3.0.3", plugins=[plugin])
    publish: dict[str, Any] = {}
    replies: dict[str, Any] = {}
    for frame_type, frame in sorted(FRAME_SPECS.items()):
        envelope = {"type": "object", "required": ["type"],
                    "properties": {"type": {**ENVELOPE, "enum": [frame_type]}, "ref": REF}}
        payload: dict[str, Any] = envelope
        if frame.schema is not None:
            name = schema_name_resolver(frame.schema)
            if name not in spec.components.schemas:
                spec.components.schema(name, schema=frame.schema)
            payload = {"allOf": [envelope, {"$ref": f"#/components/schemas/{name}"}]}
        publish[_name(frame_type)] = {
            "name": frame_type, "title": frame_type, "summary": frame.summary or frame_type, "payload": payload,
            **({"x-reply": frame.reply} if frame.reply else {})}
        if frame.reply:
            replies[_name(frame.reply) + "Reply"] = {
                "name": frame.reply, "title": frame.reply, "summary": f"The reply to {frame_type} (carries its ref)",
                "payload": {"type": "object", "required": ["type"],
                            "properties": {"type": {**ENVELOPE, "enum": [frame.reply]}, "ref": REF}}}
    replies["ErrorFrame"] = {"name": "error", "title": "error", "payload": ERROR_PAYLOAD,
                             "summary": "A frame was refused; the socket stays open"}
    replies["HelloFrame"] = {"name": "hello", "title": "hello", "summary": "First frame after a successful handshake",
                             "payload": {"type": "object", "required": ["type", "user_id"], "properties": {
                                 "type": {"type": "string", "enum": ["hello"]}, "user_id": {"type": "integer"}}}}
    schemas = finalize(spec.to_dict()).get("components", {}).get("schemas", {})
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Strava+1 socket", "version": "v1", "description": (
            "One WebSocket per client at /api/v1/ws (docs/realtime.md). Authenticate the handshake with "
            "'Authorization: Bearer <ID token>' or '?ticket=' (POST /api/v1/ws/ticket). Close codes: "
            f"{CLOSE_UNAUTHENTICATED} (get a fresh token or ticket), {CLOSE_TRY_AGAIN} (retry later), "
            f"{CLOSE_TOO_SLOW} (the client read too slowly).")},
        "channels": {WS_PATH: {
            "publish": {"operationId": "sendFrame", "summary": "Frames the client sends",
                        "message": {"oneOf": [{"$ref": f"#/components/messages/{n}"} for n in publish]}},
            "subscribe": {"operationId": "receiveFrame", "summary": "Frames the server sends (replies; "
                          "broadcasts are described in docs/realtime.md)",
                          "message": {"oneOf": [{"$ref": f"#/components/messages/{n}"} for n in replies]}},
        }},
        "components": {"messages": {**publish, **replies}, "schemas": schemas},
    }


def register_asyncapi(app: Flask, schema_name_resolver: Any) -> None:
    def asyncapi_json() -> Any:
        return current_app.json.response(build(schema_name_resolver))

    app.add_url_rule("/api/v1/asyncapi.json", "asyncapi_json", asyncapi_json)
