"""The OpenAPI document as a client generator reads it: valid, strict, and good enough to generate a working client.

The rules (docs/api.md) are checked over the whole document, so an endpoint added later that breaks one fails
here by name. The last test generates a Python client with openapi-python-client's default settings and drives
a real flow through it (upload, poll, read, feed, kudos, typed errors) against the app and a real worker.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from tests.support.synthetic import synthetic_track, to_gpx
from webapp.openapi import HTTP_METHODS, schema_uses

OPERATION_ID = re.compile(r"^[a-z][a-zA-Z0-9]+$")
#: The resources a client team reads first: each has an example in the document.
MAIN_RESOURCES = ("Activity", "ActivitySummary", "Upload", "Profile", "PublicProfile", "Error")


@pytest.fixture(scope="module")
def document(app: Any) -> dict[str, Any]:
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return resp.json


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_document_validates(document: dict[str, Any]) -> None:
    validate(document)  # raises with the first problem


def test_every_operation_has_a_unique_readable_operation_id_and_a_described_tag(document: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    tags = {tag["name"]: tag.get("description") for tag in document.get("tags", [])}
    for path, method, operation in operations(document):
        label = f"{method.upper()} {path}"
        op_id = operation.get("operationId", "")
        assert OPERATION_ID.match(op_id), f"{label}: operationId {op_id!r}"
        assert op_id not in seen, f"{label} and {seen.get(op_id)} share operationId {op_id}"
        seen[op_id] = label
        assert operation.get("tags"), f"{label} has no tag"
        for tag in operation["tags"]:
            assert tags.get(tag), f"{label}: tag {tag!r} has no description"
    for expected in ("getActivity", "listFeed", "getMe", "createUpload", "getUpload", "listUserActivities",
                     "getActivityStreams", "giveKudos", "joinGroup"):
        assert expected in seen, expected


def test_every_operation_documents_the_errors_it_can_return_with_the_error_schema(document: dict[str, Any]) -> None:
    from webapp.auth import requires_token

    error_ref = "#/components/schemas/Error"
    for name, response in document["components"]["responses"].items():
        if name in {"DEFAULT_ERROR"} or not name.isupper():
            continue
        assert response["content"]["application/json"]["schema"] == {"$ref": error_ref}, name
    for path, method, operation in operations(document):
        label = f"{method.upper()} {path}"
        statuses = set(operation["responses"])
        expected = {"503"}
        if requires_token(path):
            expected.add("401")
        if "{" in path:
            expected |= {"404", "422"}
        if "requestBody" in operation:
            expected |= {"400", "413", "422"}
        if operation.get("parameters"):
            expected.add("422")
        if method != "get":
            expected |= {"409", "429"}
        assert expected <= statuses, f"{label} does not document {sorted(expected - statuses)}"
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) or status == "default":
                assert response.get("$ref", "").startswith("#/components/responses/"), f"{label} {status}"
    error = document["components"]["schemas"]["Error"]
    assert {"code", "status", "message", "request_id"} <= set(error["required"])
    assert "errors" in error["properties"] and "errors" not in error["required"]


def test_response_schemas_say_what_is_always_there_and_what_can_be_null(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    inputs, outputs = schema_uses(document)
    both = sorted(inputs & outputs)
    assert not both, f"schemas used by requests and responses alike (give the request its own schema): {both}"
    for name in sorted(outputs):
        schema = schemas[name]
        if schema.get("type") == "object" and schema.get("properties"):
            always = {key for key, prop in schema["properties"].items() if not prop.get("x-omittable")}
            assert set(schema.get("required", [])) == always, f"response schema {name}: required is not " \
                f"every field but the omittable ones: {sorted(always ^ set(schema.get('required', [])))}"
    # allow_none → nullable; a nullable reference is allOf + nullable (what generators read as optional).
    activity = schemas["Activity"]["properties"]
    assert activity["avg_hr"].get("nullable") is True
    assert activity["map"] == {"allOf": [{"$ref": "#/components/schemas/Map"}], "nullable": True,
                               "description": "null without GPS"}
    assert "nullable" not in activity["id"]


def test_no_huge_or_clashing_enums_and_array_parameters_are_arrays(document: dict[str, Any]) -> None:
    def walk(node: Any, where: str) -> Iterator[tuple[str, list[Any]]]:
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                yield where, node["enum"]
            for key, value in node.items():
                yield from walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}[{index}]")

    for where, enum in walk(document, "$"):
        assert len(enum) <= 100, f"{where}: an enum of {len(enum)} values"
        keys = [re.sub(r"[^a-z0-9]", "", str(v).lower()) for v in enum]
        assert len(keys) == len(set(keys)), f"{where}: enum values that clash as generated names"
    timezone = document["components"]["schemas"]["Preferences"]["properties"]["timezone"]
    assert timezone["type"] == "string" and "enum" not in timezone
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if schema.get("type") == "array":
                assert "items" in schema, f"{method} {path} {parameter['name']}"
                assert isinstance(schema.get("default", []), list), f"{method} {path} {parameter['name']} default"


def test_main_resources_have_examples_that_fit_their_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in MAIN_RESOURCES:
        example = schemas[name].get("example")
        assert example, f"{name} has no example"
        resolved = {**schemas[name]}
        resolved.pop("example")
        errors = [e.message for e in OAS30Validator(
            {**resolved, "components": {"schemas": schemas}}).iter_errors(example)]
        assert not errors, f"{name} example: {errors[:3]}"


def test_the_upload_answer_is_declared_as_one_upload_or_a_batch(document: dict[str, Any]) -> None:
    created = document["paths"]["/api/v1/uploads"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "oneOf": [{"$ref": "#/components/schemas/Upload"}, {"$ref": "#/components/schemas/Batch"}]}


# --- a generated client, used ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The client openapi-python-client generates with its default settings, imported from a temporary folder."""
    import json

    folder = tmp_path_factory.mktemp("client")
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(document))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "openapi-python-client"), "generate", "--path", str(spec),
         "--output-path", str(folder / "project")], capture_output=True, text=True, env=env, cwd=folder,
        timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    packages = [p for p in (folder / "project").iterdir() if (p / "__init__.py").exists()]
    assert len(packages) == 1, packages
    sys.path.insert(0, str(folder / "project"))
    try:
        yield importlib.import_module(packages[0].name)
    finally:
        sys.path.remove(str(folder / "project"))


def _gpx(seed: int) -> bytes:
    return to_gpx(synthetic_track(seed=seed, n_points=600, speed_mps=3.0))


def test_a_generated_client_runs_the_mobile_flow(app: Any, generated: Any, live_client: Any, make_token: Any,
                                                 live_login: Any) -> None:
    import httpx

    pkg = generated.__name__
    api = importlib.import_module(f"{pkg}.api")
    models = importlib.import_module(f"{pkg}.models")
    types = importlib.import_module(f"{pkg}.types")

    def call(tag: str, op: str) -> Any:
        return importlib.import_module(f"{api.__name__}.{tag}.{op}")

    live_login("bob")
    token = make_token("ann@example.com")
    client = generated.AuthenticatedClient(base_url="http://api.test", token=token, raise_on_unexpected_status=True)
    client.set_httpx_client(httpx.Client(base_url="http://api.test", transport=httpx.WSGITransport(app=app),
                                         headers={"Authorization": f"Bearer {token}"}))

    me = call("profiles", "get_me").sync(client=client)
    assert isinstance(me, models.Profile) and me.email == "ann@example.com"

    form = models.UploadFile(file=types.File(payload=io.BytesIO(_gpx(1)), file_name="run.gpx"))
    single = call("uploads", "create_upload").sync(client=client, body=form)
    assert isinstance(single, models.Upload), single

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.gpx", _gpx(2))
        zf.writestr("b.gpx", _gpx(3))
    batch = call("uploads", "create_upload").sync(
        client=client, body=models.UploadFile(file=types.File(payload=io.BytesIO(archive.getvalue()),
                                                              file_name="week.zip")))
    assert isinstance(batch, models.Batch) and len(batch.uploads) == 2, batch

    def ready(upload_id: int) -> Any:
        deadline = time.monotonic() + 90
        while True:
            upload = call("uploads", "get_upload").sync(client=client, upload_id=upload_id)
            assert isinstance(upload, models.Upload)
            if upload.status in {"ready", "failed", "duplicate"}:
                return upload
            assert time.monotonic() < deadline, f"upload {upload_id} still {upload.status}"
            time.sleep(0.1)

    done = [ready(u.id) for u in [single, *batch.uploads]]
    assert [u.status for u in done] == ["ready"] * 3, [(u.status, u.error) for u in done]

    activity = call("activities", "get_activity").sync(client=client, activity_id=done[0].activity_id)
    assert isinstance(activity, models.Activity) and activity.distance_m > 0 and activity.map_ is not None
    streams = call("activities", "get_activity_streams").sync(client=client, activity_id=activity.id)
    assert isinstance(streams, models.StreamSet) and len(streams.latlng.data) == streams.latlng.original_size

    mine = call("activities", "list_user_activities").sync(client=client, user_id=me.id)
    assert len(mine.items) == 3 and mine.items[0].map_.summary_polyline

    bob = generated.AuthenticatedClient(base_url="http://api.test", token=make_token("bob@example.com"))
    bob.set_httpx_client(httpx.Client(base_url="http://api.test", transport=httpx.WSGITransport(app=app),
                                      headers={"Authorization": f"Bearer {make_token('bob@example.com')}"}))
    call("follows", "follow_user").sync(client=bob, user_id=me.id)
    feed = call("feed", "list_feed").sync(client=bob)
    assert isinstance(feed, models.FeedPage) and feed.items, feed
    kudos = call("interactions", "give_kudos").sync(client=bob, collection=models.GiveKudosCollection.ACTIVITIES,
                                                     target_id=activity.id)
    assert isinstance(kudos, models.KudosState) and kudos.kudos_count == 1

    missing = call("activities", "get_activity").sync(client=client, activity_id=10**9)
    assert isinstance(missing, models.Error) and missing.code == 404 and missing.request_id
    invalid = call("activities", "create_activity").sync(
        client=client, body=models.ManualActivity(sport_type=models.ManualActivitySportType.RUNNING,
                                                  start_date=activity.start_date, elapsed_time_s=-5))
    assert isinstance(invalid, models.Error) and invalid.code == 422
    assert "elapsed_time_s" in invalid.message


def test_operation_ids_are_derived_for_routes_added_later() -> None:
    from webapp.openapi import operation_id

    page = {"Page": {"type": "object", "properties": {"items": {"type": "array"}}}}
    ok_page = {"responses": {200: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}}}
    assert operation_id("get", "/api/v1/media/{media_id}", {}) == "getMedia"
    assert operation_id("get", "/api/v1/users/{user_id}/stats", {}) == "getUserStats"
    assert operation_id("get", "/api/v1/me/exports", ok_page, page) == "listMyExports"
    assert operation_id("post", "/api/v1/me/exports", {"responses": {201: {}}}) == "createMyExport"
    assert operation_id("post", "/api/v1/media/{media_id}/complete", {"responses": {200: {}}}) == "completeMedia"
    assert operation_id("get", "/api/v3/athlete", {}) == "getV3Athlete"  # another version keeps its names apart
    assert operation_id("delete", "/api/v1/share-pages/{share_id}", {}) == "deleteSharePage"
