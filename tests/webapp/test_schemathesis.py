"""Property-based run over the whole OpenAPI document: no input gets a 5xx, every response fits its declared schema.

Schemathesis generates requests for every operation of /api/v1/openapi.json (valid ones and ones that break the
schema), sends them to the app in-process (WSGI), signed in as an athlete who owns a few resources, and checks each
answer. Examples per operation are bounded (``MAX_EXAMPLES``) so the run stays around a minute on two cores.
Run it alone: ``pytest -p no:xdist -m schemathesis``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.support.foods import own_health_records

pytestmark = pytest.mark.schemathesis

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def athlete(app: Any, client: Any, login: Any) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """Signed in, with an activity, a group, a segment and a conversation of its own: the ids of a third pass."""
    headers, user_id = login("ann")
    _, bob_id = login("bob")

    def create(path: str, body: dict[str, Any]) -> int:
        resp = client.post(f"/api/v1{path}", headers=headers, json=body)
        assert resp.status_code == 201, resp.json
        return int(resp.json["id"])

    activity = create("/activities", {"sport_type": "running", "start_date": "2026-10-01T07:00:00+00:00",
                                      "elapsed_time_s": 1800, "distance_m": 5000})
    ids = {"user_id": user_id, "activity_id": activity, "target_id": activity, "collection": "activities",
           "group_id": create("/groups", {"name": "Runners"}),
           "segment_id": create("/segments", {"name": "Hill", "sport_type": "running",
                                              "points": [[45.0, 6.0], [45.001, 6.001], [45.002, 6.002]]}),
           "conversation_id": create("/conversations", {"kind": "group", "name": "Crew", "member_ids": [bob_id]}),
           "post_id": create("/posts", {"text": "Hello"}), **own_health_records(client, headers)}
    old = app.config["RATE_LIMIT_WRITES_PER_MIN"]
    app.config["RATE_LIMIT_WRITES_PER_MIN"] = 0  # the run writes far more than an athlete may per minute
    yield headers, ids
    app.config["RATE_LIMIT_WRITES_PER_MIN"] = old


def test_no_server_error_and_every_response_matches_its_schema(
        app: Any, athlete: tuple[dict[str, str], dict[str, Any]]) -> None:
    """Per operation: valid requests, invalid ones, then (where the path names only ids the athlete owns)
    valid requests on those real resources, so the success responses are checked against their schemas too."""
    # Each operation and pass runs as its own Hypothesis test, so one failure does not hide the others.
    # (schemathesis.pytest's lazy parametrisation needs a pytest private that pytest 9.2 removed.)
    headers, ids = athlete
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    counts = {"operations": 0, "examples": 0, "owned": 0}
    statuses: dict[str, int] = {}
    started = time.monotonic()
    for result in schema.get_all_operations():
        counts["operations"] += 1
        if not isinstance(result, Ok):  # an operation schemathesis can't read is a failure, never a silent skip
            failures.append(f"unreadable operation: {result.err()}")
            continue
        operation = result.ok()
        names = [p.name for p in operation.path_parameters]
        passes: list[tuple[str, Any]] = [
            ("positive", operation.as_strategy(generation_mode=GenerationMode.POSITIVE)),
            ("negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))]
        if names and all(name in ids for name in names):
            counts["owned"] += 1
            passes.append(("owned", operation.as_strategy(
                generation_mode=GenerationMode.POSITIVE, path_parameters={n: ids[n] for n in names})))
        for label, strategy in passes:

            @given(case=strategy)
            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                counts["examples"] += 1
                # The in-process WSGI call does not undo Content-Encoding as an HTTP client does: ask for the
                # plain body (compression has its own tests, tests/webapp/test_httpcache.py).
                case.headers = {**(case.headers or {}), **headers, "Accept-Encoding": "identity"}
                response = case.call_and_validate(checks=CHECKS)
                statuses[f"{response.status_code // 100}xx"] = statuses.get(f"{response.status_code // 100}xx", 0) + 1

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # collected: every operation's failures are reported
                failures.append(f"{operation.label} ({label}): {str(exc)[:2000]}")
    print(f"schemathesis: {counts['operations']} operations ({counts['owned']} also on owned resources), "
          f"{counts['examples']} examples {dict(sorted(statuses.items()))}, {time.monotonic() - started:.1f} s, "
          f"{len(failures)} failing")
    assert counts["operations"] > 60
    assert not failures, "\n\n".join(failures)
