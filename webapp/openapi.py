"""The OpenAPI contract's rules, applied to every operation by machinery instead of by hand (docs/api.md).

A resource module declares routes, arguments and success responses as usual (flask-smorest); this module turns
that into a document strict client generators (Python, Swift, Kotlin) can use without hand edits:

- **operationId** on every operation, derived from the method and the path (``GET /activities/{activity_id}`` →
  ``getActivity``, ``GET /feed`` → ``listFeed``, ``POST /groups/{group_id}/join`` → ``joinGroup``); a view
  overrides it with ``@blp.doc(operationId="…")``.
- **required / nullable** from the marshmallow schemas: a field is nullable when ``allow_none``; in a schema that
  only responses use, every dumped field is required (marshmallow dumps every field the object has), except those
  marked :func:`omittable` (sent only sometimes; ``x-omittable: true`` in the document). Request schemas keep
  marshmallow's ``required``, and no schema serves both.
- **Error responses** every operation can really get, with the ``Error`` schema (the body
  :mod:`webapp.errors` sends): 401 where a token is needed, 404/403 where the path names a resource, 400/413 where
  there is a body, 422 where there are inputs, 409/429 on writes, 503 everywhere.
- **Polymorphic bodies** with :func:`one_of` (``oneOf`` of schemas), so a generator builds a union.

tests/webapp/test_openapi.py checks the whole document against these rules, so new endpoints comply or fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Flask, current_app
from flask_smorest import Api
from webargs.fields import DelimitedList

from webapp.auth import requires_token

OMITTABLE = "x-omittable"
_DUMP_REQUIRED = "x-dump-required"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

#: Error statuses by the component name that documents them (flask-smorest registers one per HTTP status).
ERROR_RESPONSES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE", 422: "UNPROCESSABLE_ENTITY", 429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def omittable(**metadata: Any) -> dict[str, Any]:
    """Field metadata for a response field that is left out of some bodies (so it is not ``required``):
    ``ma.fields.String(metadata=omittable(description="…"))``."""
    return {**metadata, OMITTABLE: True}


def one_of(*schemas: type[ma.Schema]) -> dict[str, Any]:
    """A response schema that is one of several (``@blp.doc(responses={"201": {"content": {"application/json":
    {"schema": one_of(A, B)}}}})``); the schemas must not both accept one body (their ``required`` differ)."""
    return {"oneOf": list(schemas)}


# --- operationId ------------------------------------------------------------------------------------------------

def _pascal(segment: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.]", segment) if part)


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "os")):
        return word[:-1]
    return word


def _is_list(body: Any, schemas: dict[str, Any]) -> bool:
    """A 200 body that is a collection: an array, or a page/list object (an ``items`` array)."""
    if isinstance(body, dict) and isinstance(body.get("$ref"), str):
        body = schemas.get(body["$ref"].rsplit("/", 1)[1], {})
    if not isinstance(body, dict):
        return False
    items = body.get("properties", {}).get("items", {})
    return body.get("type") == "array" or (isinstance(items, dict) and items.get("type") == "array")


def operation_id(method: str, path: str, operation: dict[str, Any], schemas: dict[str, Any] | None = None) -> str:
    """``getActivity``, ``listUserActivities``, ``createUpload``, ``updateMe``, ``joinGroup``… (docs/api.md)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[:1] == ["api"]:
        parts = parts[1:]
    prefix = ""
    if parts and re.fullmatch(r"v\d+", parts[0]):
        version = parts.pop(0)
        prefix = "" if version == "v1" else version  # other API versions keep their names apart: getV3Athlete
    words: list[str] = []
    for index, part in enumerate(parts):
        if part.startswith("{"):
            continue
        followed_by_id = index + 1 < len(parts) and parts[index + 1].startswith("{")
        if part == "me" and index == 0:
            words.append("Me" if len(parts) == 1 else "My")
            continue
        words.append(_pascal(singular(part) if followed_by_id else part))
    responses = operation.get("responses", {})
    statuses = {str(s) for s in responses}
    last_is_param = bool(parts) and parts[-1].startswith("{")
    verb: str
    if method == "get":
        ok = responses.get(200) or responses.get("200") or {}
        body = ok.get("content", {}).get("application/json", {}).get("schema") if isinstance(ok, dict) else None
        verb = "list" if _is_list(body, schemas or {}) else "get"
    elif method == "post" and ("201" in statuses or last_is_param or len(words) < 2):
        verb = "create"
        if words and not last_is_param:
            words[-1] = _pascal(singular(parts[-1]))
    elif method == "post":
        # An action on a resource: POST /groups/{id}/join → joinGroup, POST /notifications/read → readNotifications.
        verb = parts[-1].replace("-", "_")
        verb = verb.split("_")[0] + "".join(w.title() for w in verb.split("_")[1:])
        words = words[:-1]
    else:
        verb = {"put": "set", "patch": "update", "delete": "delete"}.get(method, method)
    return verb + prefix.title() + "".join(words)


# --- required ---------------------------------------------------------------------------------------------------

class ContractConverter(OpenAPIConverter):
    """Records which fields a dump always contains (``x-dump-required``), for :func:`finalize` to turn into
    ``required`` in the schemas only responses use; and writes a nullable nested schema as
    ``allOf: [$ref], nullable: true``, which generators read as an optional reference."""

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema: dict[str, Any] = super().schema2jsonschema(schema)
        instance = schema() if isinstance(schema, type) else schema
        if getattr(instance, "partial", False):
            # A partial (PATCH) body's nested objects are partial too (marshmallow loads them so).
            for name, field in instance.fields.items():
                prop = jsonschema["properties"].get(field.data_key or name, {})
                if isinstance(field, ma.fields.Nested) and isinstance(field.schema, ma.Schema) and "$ref" in prop:
                    prop["$ref"] = self.resolve_nested_schema(type(field.schema)(partial=True))["$ref"]
        else:
            dumped = [field.data_key or name for name, field in instance.fields.items()
                      if not field.load_only and not field.metadata.get(OMITTABLE)
                      and name not in getattr(instance, "exclude", ())]
            jsonschema[_DUMP_REQUIRED] = dumped
        example = getattr(getattr(instance, "Meta", None), "example", None)
        if example is not None:  # ``class Meta: example = {…}`` on a schema (checked against it by the tests)
            jsonschema["example"] = example
        return jsonschema

    def field2property(self, field: Any) -> dict[str, Any]:
        prop: dict[str, Any] = super().field2property(field)
        if isinstance(field, DelimitedList) and isinstance(prop.get("default"), str):
            prop["default"] = list(field.load_default)  # the list a client would send, not its joined text
        any_of = prop.get("anyOf")
        if field.allow_none and isinstance(any_of, list) and {"type": "object", "nullable": True} in any_of:
            refs = [item for item in any_of if item != {"type": "object", "nullable": True}]
            prop.pop("anyOf")
            prop.update({"allOf": refs, "nullable": True})
        return prop


class ContractMarshmallowPlugin(MarshmallowPlugin):
    Converter = ContractConverter


def _refs(node: Any, kind: str = "schemas") -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(f"#/components/{kind}/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value, kind)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value, kind)


def _closure(roots: Iterable[str], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        stack.extend(_refs(schemas[name]))
    return seen


def schema_uses(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The component schemas reachable from requests (bodies, parameters) and from responses."""
    schemas = document.get("components", {}).get("schemas", {})
    inputs: list[str] = []
    outputs: list[str] = []
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                if method == "parameters":
                    inputs.extend(_refs(operation))
                continue
            inputs.extend(_refs(operation.get("requestBody", {})))
            inputs.extend(_refs(operation.get("parameters", [])))
            outputs.extend(_refs(operation.get("responses", {})))
            for name in _refs(operation.get("responses", {}), "responses"):
                outputs.extend(_refs(document["components"]["responses"].get(name, {})))
    return _closure(inputs, schemas), _closure(outputs, schemas)


def finalize(document: dict[str, Any]) -> dict[str, Any]:
    """Turn the recorded dump fields into ``required`` where only responses use a schema (a schema a request
    uses too keeps marshmallow's own ``required``: a client must not be told to send fields it may leave out)."""
    schemas = document.get("components", {}).get("schemas", {})
    inputs, outputs = schema_uses(document)
    for name, schema in schemas.items():
        dumped = schema.pop(_DUMP_REQUIRED, None)
        if dumped is None or name in inputs or name not in outputs:
            continue
        required = list(dict.fromkeys([*schema.get("required", []), *dumped]))
        if required:
            schema["required"] = required
    return document


# --- operationId and error responses, per operation --------------------------------------------------------------

class ContractPlugin(BasePlugin):
    """Runs on every path flask-smorest documents (any blueprint, any API version), after the marshmallow plugin
    has turned schemas into references."""

    def init_spec(self, spec: Any) -> None:
        self.spec = spec

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        if not path or not operations:
            return
        has_path_params = "{" in path
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            schemas = self.spec.components.schemas
            operation.setdefault("operationId", operation_id(method, path, operation, schemas))
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters") or []
            has_body = "requestBody" in operation or any(
                isinstance(p, dict) and p.get("in") in {"body", "formData"} for p in parameters)
            statuses: set[int] = {503}
            if requires_token(path):
                statuses.add(401)
            if has_path_params:
                statuses |= {403, 404, 422}
            if has_body:
                statuses |= {400, 413, 422}
            if parameters:
                statuses.add(422)
            if method in WRITE_METHODS:
                statuses |= {409, 429}
            documented = {str(status) for status in responses}
            for status in sorted(statuses):
                if str(status) not in documented:
                    responses[status] = ERROR_RESPONSES[status]


class ContractApi(Api):
    """flask-smorest's Api serving the finished contract (:func:`finalize`) at ``openapi.json``."""

    def _openapi_json(self) -> Any:
        return current_app.response_class(
            current_app.json.dumps(self.contract(), indent=2), mimetype="application/json")

    def contract(self) -> dict[str, Any]:
        return finalize(self.spec.to_dict())


def build_api(app: Flask, *, error_schema: type[ma.Schema], schema_name_resolver: Any) -> ContractApi:
    class DocumentedApi(ContractApi):
        ERROR_SCHEMA = error_schema  # the error payload as sent, request_id included

    return DocumentedApi(app, spec_kwargs={
        "marshmallow_plugin": ContractMarshmallowPlugin(schema_name_resolver=schema_name_resolver),
        "extra_plugins": [ContractPlugin()],
    })
