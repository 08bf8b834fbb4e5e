"""The socket's AsyncAPI document is generated from the frame registry and stays in step with what the server
accepts: every handler is documented with the schema it validates with, and a frame built from the documented
schema is accepted while one breaking it is refused the same way."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS30Validator

from webapp.realtime.frames import FRAME_SPECS, HANDLERS


def test_every_handler_is_documented_with_its_validating_schema(app: Any) -> None:
    resp = app.test_client().get("/api/v1/asyncapi.json")  # public, like the OpenAPI document
    assert resp.status_code == 200
    doc = resp.json
    assert doc["asyncapi"].startswith("2.") and "/api/v1/ws" in doc["channels"]
    messages = doc["components"]["messages"]
    channel = doc["channels"]["/api/v1/ws"]

    def named(operation: str) -> dict[str, Any]:
        refs = [m["$ref"].rsplit("/", 1)[1] for m in channel[operation]["message"]["oneOf"]]
        return {messages[r]["name"]: messages[r] for r in refs}

    published, received = named("publish"), named("subscribe")
    assert set(HANDLERS) == set(FRAME_SPECS)
    assert set(HANDLERS) <= set(published), f"undocumented frame types: {set(HANDLERS) - set(published)}"
    ours = {t: spec for t, spec in FRAME_SPECS.items() if HANDLERS[t].__module__.startswith("webapp.")}
    assert len(ours) >= 7  # (other tests register throwaway handlers of their own)
    for frame_type, spec in ours.items():
        assert spec.schema is not None, f"{frame_type}: register its handler with the schema it loads frames with"
        payload = published[frame_type]["payload"]
        ref = payload["allOf"][1]["$ref"].rsplit("/", 1)[1]
        required = set(doc["components"]["schemas"][ref].get("required", []))
        loaded = {f.data_key or n for n, f in spec.schema().fields.items() if f.required}
        assert required == loaded, frame_type
        if spec.reply:
            assert spec.reply in received
    assert {"error", "hello"} <= set(received)
    assert len(channel["publish"]["message"]["oneOf"]) == len(FRAME_SPECS)


def test_the_documented_payloads_match_what_the_socket_accepts(app: Any, ws_connect: Any, live_login: Any,
                                                               make_token: Any, live_client: Any) -> None:
    doc = app.test_client().get("/api/v1/asyncapi.json").json
    schemas = doc["components"]["schemas"]
    headers, _ = live_login("ann")
    _, bob_id = live_login("bob")
    convo = live_client.post("/api/v1/conversations", headers=headers,
                             json={"kind": "group", "name": "Crew", "member_ids": [bob_id]}).json["id"]
    send_schema = {**doc["components"]["messages"]["ChatSendFrame"]["payload"], "components": {"schemas": schemas}}
    good = {"type": "chat.send", "ref": "1", "conversation_id": convo, "client_id": "c-1", "body": "hi"}
    bad = {"type": "chat.send", "ref": "2", "conversation_id": convo, "body": "no client id"}
    validator = OAS30Validator(send_schema)
    assert validator.is_valid(good) and not validator.is_valid(bad)
    client = ws_connect(token=make_token("ann@example.com"))
    client.send(good)
    assert client.recv_type("chat.ack")["ref"] == "1"
    client.send(bad)
    error = client.recv_type("error")
    assert error["ref"] == "2" and error["status"] == 422 and "client_id" in error["errors"]
    error_schema = {**doc["components"]["messages"]["ErrorFrame"]["payload"], "components": {"schemas": schemas}}
    assert OAS30Validator(error_schema).is_valid(error)
