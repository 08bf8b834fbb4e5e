"""Hostile inputs get a 4xx in flask-smorest's JSON shape, never a 500 (webapp/inputs.py, domain/pagination.py,
webapp/columns.py): NUL and lone surrogates anywhere, crafted cursors, parser edge cases, strings longer than
their column, bodies larger than their route accepts."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import marshmallow as ma
import pytest
from marshmallow import validate

from models import Base

API = "/api/v1"


def assert_error(resp: Any, code: int) -> dict[str, Any]:
    assert resp.status_code == code, (resp.status_code, resp.get_data(as_text=True)[:300])
    body = resp.json
    assert body["code"] == code and isinstance(body["status"], str) and body["message"]
    return body


# --- NUL and lone surrogates ---------------------------------------------------------------------------------

def test_nul_in_a_json_string_is_422_naming_the_field(client, login):
    headers, _ = login("ann")
    body = assert_error(client.patch(f"{API}/me", headers=headers, json={"bio": "a\x00b"}), 422)
    assert body["errors"] == {"json": {"bio": ["NUL characters are not allowed."]}}
    # Nested and in keys too (a Dict field would otherwise carry them to a JSONB column).
    assert_error(client.patch(f"{API}/me", headers=headers, json={"preferences": {"language": "\x00"}}), 422)
    assert_error(client.patch(f"{API}/me", headers=headers, json={"a\x00": 1}), 422)


def test_lone_surrogate_in_json_is_422(client, login):
    headers, _ = login("ann")
    raw = '{"display_name": "x\\ud800y"}'  # valid JSON, but not valid Unicode: UTF-8 can't encode it
    resp = client.patch(f"{API}/me", headers={**headers, "Content-Type": "application/json"}, data=raw)
    body = assert_error(resp, 422)
    assert "surrogate" in body["errors"]["json"]["display_name"][0]
    paired = '{"display_name": "\\ud83c\\udfc3"}'  # a real pair (🏃) stays fine
    resp = client.patch(f"{API}/me", headers={**headers, "Content-Type": "application/json"}, data=paired)
    assert resp.status_code == 200 and resp.json["display_name"] == "🏃"


def test_nul_in_query_form_field_and_filename_is_422(client, login):
    headers, _ = login("ann")
    assert_error(client.get(f"{API}/groups?q=run%00club", headers=headers), 422)
    assert_error(client.get(f"{API}/uploads?batch_id=%00", headers=headers), 422)
    assert_error(client.delete(f"{API}/me/devices/tok%00en", headers=headers), 422)  # a path parameter
    form = {"file": (io.BytesIO(b"<gpx/>"), "ride.gpx"), "name": "Morning\x00ride"}
    body = assert_error(client.post(f"{API}/uploads", headers=headers, content_type="multipart/form-data",
                                    data=form), 422)
    assert body["errors"] == {"form": {"name": ["NUL characters are not allowed."]}}
    form = {"file": (io.BytesIO(b"<gpx/>"), "ride\x00.gpx")}
    assert_error(client.post(f"{API}/uploads", headers=headers, content_type="multipart/form-data", data=form), 422)


# --- JSON parser edge cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "[" * 1000 + "]" * 1000,
    '{"a":' * 1000 + "1" + "}" * 1000,
    '{"bio": ' + "[" * 100 + "]" * 100 + "}",  # deeper than MAX_JSON_DEPTH, shallow enough to decode
    '{"weight_kg": NaN}',
    '{"weight_kg": -Infinity}',
])
def test_json_parser_edge_cases_are_400(client, login, raw):
    headers, _ = login("ann")
    resp = client.patch(f"{API}/me", headers={**headers, "Content-Type": "application/json"}, data=raw)
    assert_error(resp, 400)


def test_ids_beyond_bigint_are_422_in_bodies_and_404_in_paths(client, login):
    headers, _ = login("ann")
    huge = 10**20
    assert_error(client.post(f"{API}/notifications/read", headers=headers, json={"ids": [huge]}), 422)
    assert_error(client.get(f"{API}/users/{huge}", headers=headers), 404)
    assert_error(client.get(f"{API}/activities/{huge}", headers=headers), 404)


def test_a_device_ref_that_only_looks_numeric_is_404(client, login):
    headers, _ = login("ann")
    assert_error(client.delete(f"{API}/me/devices/%C2%B9", headers=headers), 404)  # "¹": isdigit(), not int()


def test_socket_frames_get_the_same_guard():
    """The socket endpoint parses frames with the same guard: an error frame, not an exception in the loop."""
    from types import SimpleNamespace

    from webapp.realtime.endpoint import dispatch

    sent: list[dict[str, Any]] = []
    conn = SimpleNamespace(settings=SimpleNamespace(max_frame_bytes=1 << 20), send=sent.append)
    for raw, status in (("[" * 1000 + "]" * 1000, 400), ('{"type": "chat.send", "body": "\\u0000"}', 422),
                        ('{"type": "ping", "x": NaN}', 400)):
        dispatch(conn, raw)
        assert sent[-1]["type"] == "error" and sent[-1]["status"] == status, sent[-1]


# --- Cursors ------------------------------------------------------------------------------------------------

def _unsigned(*values: Any) -> str:
    """A cursor as the API used to issue them (base64 of JSON): anyone could write one."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_crafted_cursors_on_every_list_endpoint_are_400(client, login):
    ann, ann_id = login("ann")
    activity = client.post(f"{API}/activities", headers=ann, json={
        "sport_type": "running", "start_date": "2026-10-01T07:00:00+00:00", "elapsed_time_s": 1800,
        "distance_m": 5000}).json["id"]
    group = client.post(f"{API}/groups", headers=ann, json={"name": "Runners"}).json["id"]
    segment = client.post(f"{API}/segments", headers=ann, json={
        "name": "Hill", "sport_type": "running", "points": [[45.0, 6.0], [45.001, 6.001], [45.002, 6.002]]})
    assert segment.status_code == 201, segment.json
    ids = {"user_id": ann_id, "group_id": group, "segment_id": segment.json["id"], "target_id": activity,
           "collection": "activities"}
    spec = client.get(f"{API}/openapi.json").json
    paths = [path for path, item in spec["paths"].items()
             if any(p["name"] == "cursor" for p in item.get("get", {}).get("parameters", []))]
    assert len(paths) >= 13
    crafted = [_unsigned("not a date", "x"), _unsigned("x"), _unsigned(10**30, -1), _unsigned(1.5, "x:1"),
               "!!!", "a.b", "x" * 5000]
    for path in paths:
        url = API + path.removeprefix(API).format(**ids)
        # A required query parameter (the search's q) gets a valid value.
        needed = {p["name"]: "an" for p in spec["paths"][path]["get"]["parameters"]
                  if p["in"] == "query" and p.get("required")}
        first = client.get(url, headers=ann, query_string=needed)
        assert first.status_code == 200, (url, first.json)
        for cursor in crafted:
            body = assert_error(client.get(url, headers=ann, query_string={**needed, "cursor": cursor}), 400)
            assert "cursor" in body["message"], url
        # A real cursor, one character changed, is refused too: it is signed.
        from domain.pagination import encode_cursor

        with client.application.app_context():
            genuine = encode_cursor("2026-10-01T07:00:00+00:00", 1)
        tampered = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
        assert_error(client.get(url, headers=ann, query_string={**needed, "cursor": tampered}), 400)


def test_next_cursor_round_trips(client, login):
    ann, _ = login("ann")
    for i in range(5):
        assert client.post(f"{API}/groups", headers=ann, json={"name": f"Group {i}"}).status_code == 201
    seen: list[int] = []
    page = client.get(f"{API}/me/groups?limit=2", headers=ann).json
    seen += [g["id"] for g in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"{API}/me/groups", headers=ann,
                          query_string={"limit": 2, "cursor": page["next_cursor"]}).json
        seen += [g["id"] for g in page["items"]]
    assert len(seen) == 5 == len(set(seen))


# --- Column lengths -----------------------------------------------------------------------------------------

def test_a_string_longer_than_its_column_is_422(client, login):
    headers, _ = login("ann")
    assert_error(client.patch(f"{API}/me", headers=headers, json={"preferences": {"quiet_hours_start": "22:00\n"}}),
                 422)
    language = "en-" + "-".join(["abcdefgh"] * 3)  # matches the pattern, 29 characters, varchar(16)
    body = assert_error(client.patch(f"{API}/me", headers=headers, json={"preferences": {"language": language}}),
                        422)
    assert "language" in json.dumps(body["errors"])


def _string_bound(field: ma.fields.Field) -> int | None:
    bounds = [v.max for v in field.validators if isinstance(v, validate.Length) and v.max is not None]
    bounds += [max(len(str(c)) for c in v.choices) for v in field.validators if isinstance(v, validate.OneOf)]
    return min(bounds) if bounds else None


def _input_schemas(app: Any) -> list[tuple[str, ma.Schema]]:
    """Every schema a request or a socket frame is loaded with (nested ones included)."""
    import importlib
    import inspect
    import pkgutil

    import webapp

    roots: list[tuple[str, Any]] = []
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        handlers = [getattr(view_class, m) for m in ("get", "post", "put", "patch", "delete")
                    if hasattr(view_class, m)] if view_class else [view]
        for handler in handlers:
            for param in getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", []):
                if "schema" in param:
                    roots.append((handler.__qualname__, param["schema"]))
    for info in pkgutil.walk_packages(webapp.__path__, "webapp."):
        if info.name.endswith(".frames"):
            module = importlib.import_module(info.name)
            roots += [(f"{info.name}.{name}", cls) for name, cls in inspect.getmembers(module, inspect.isclass)
                      if issubclass(cls, ma.Schema) and cls.__module__ == module.__name__]
    out: list[tuple[str, ma.Schema]] = []
    seen: set[type] = set()
    while roots:
        where, schema = roots.pop()
        instance = schema() if isinstance(schema, type) else schema
        if type(instance) in seen:
            continue
        seen.add(type(instance))
        out.append((where, instance))
        for field in instance.fields.values():
            while isinstance(field, ma.fields.List):
                field = field.inner
            if isinstance(field, ma.fields.Nested):
                roots.append((where, field.nested))
    return out


def test_every_input_string_fits_its_column(app):
    """Each string field a request can send fits the column it is stored in: a field bounded with
    ``ColumnLength`` by that column's length, any other by the shortest column of the same name."""
    from webapp.columns import ColumnLength, column_length

    by_name: dict[str, int] = {}
    for mapper in Base.registry.mappers:
        for attr in mapper.column_attrs:
            length = column_length(getattr(mapper.class_, attr.key))
            if length is not None:
                by_name[attr.key] = min(length, by_name.get(attr.key, length))
    problems, checked = [], 0
    for where, schema in _input_schemas(app):
        for name, field in schema.fields.items():
            while isinstance(field, ma.fields.List):
                field = field.inner
            if field.dump_only or not isinstance(field, ma.fields.String):
                continue
            checked += 1
            bound = _string_bound(field)
            declared = [v for v in field.validators if isinstance(v, ColumnLength)]
            for validator in declared:
                length = column_length(validator.column)
                if length is not None and (bound is None or bound > length):
                    problems.append(f"{where} {type(schema).__name__}.{name}: max {bound} > {validator.column} "
                                    f"({length})")
            if not declared and name in by_name and (bound is None or bound > by_name[name]):
                problems.append(f"{type(schema).__name__}.{name} (in {where}): max {bound}, but a column "
                                f"{name} holds {by_name[name]}: bound it with ColumnLength(<its column>)")
    assert checked > 40
    assert not problems, "\n".join(problems)


# --- Body limits --------------------------------------------------------------------------------------------

def test_json_routes_refuse_bodies_over_their_limit_with_413(app, client, login):
    headers, _ = login("ann")
    limit = app.config["MAX_JSON_BYTES"]
    big = {"bio": "x" * (limit + 1)}
    body = assert_error(client.patch(f"{API}/me", headers=headers, json=big), 413)
    assert str(limit) in body["message"]
    assert_error(client.post(f"{API}/segments", headers=headers, json={
        "name": "x", "sport_type": "running", "points": [[45.0, 6.0, 100.0]] * 80_000}), 413)
    # The upload route keeps its own, larger limit (MAX_CONTENT_LENGTH).
    data = b"<?xml version='1.0'?><gpx>" + b" " * (limit * 2) + b"</gpx>"
    resp = client.post(f"{API}/uploads", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "big.gpx")})
    assert resp.status_code == 201, resp.json


class _Unreadable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, _buffer: Any) -> int:
        raise AssertionError("the body was read")


def test_413_comes_before_the_body_is_read(client, login):
    headers, _ = login("ann")
    resp = client.patch(f"{API}/me", headers={**headers, "Content-Type": "application/json"},
                        environ_overrides={"wsgi.input": _Unreadable(), "CONTENT_LENGTH": str(50 * 1024 * 1024)})
    assert_error(resp, 413)


# --- where an uploaded file waits --------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "to_disk"), [(1024 * 1024, False), (9 * 1024 * 1024, True)])
def test_an_uploaded_file_goes_to_disk_only_above_the_spool_size(app, monkeypatch, size, to_disk):
    import tempfile

    from webapp.inputs import FILE_SPOOL_BYTES, InputRequest

    assert app.request_class is InputRequest
    made: list[object] = []
    real = tempfile.TemporaryFile

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", counting)  # what a spooled file rolls over into
    data = {"file": (io.BytesIO(b"x" * size), "big.gpx")}
    with app.test_request_context(f"{API}/uploads", method="POST", data=data, content_type="multipart/form-data"):
        from flask import request

        assert len(request.files["file"].read()) == size
    assert (size > FILE_SPOOL_BYTES) is to_disk
    assert bool(made) is to_disk
