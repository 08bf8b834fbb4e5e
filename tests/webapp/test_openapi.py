"""The OpenAPI document is the mobile teams' contract: complete, warning-free, every operation summarised."""

from __future__ import annotations

import warnings


def test_spec_builds_without_warnings_and_documents_every_operation(database_url, redis_url, app):
    from webapp import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # apispec reports schema-name clashes this way
        fresh = create_app("testing")
        spec = fresh.test_client().get("/api/v1/openapi.json").json
    assert spec["info"]["title"] == "Strava+1 API"
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
                  if method in {"get", "post", "put", "patch", "delete"}]
    assert len(operations) > 30
    for path, method, op in operations:
        assert op.get("summary"), f"{method.upper()} {path} has no summary (the view's docstring)"
        assert path.startswith("/api/v1/")
    for contract in ("/api/v1/uploads", "/api/v1/uploads/{upload_id}", "/api/v1/me", "/api/v1/users/{user_id}/follow",
                     "/api/v1/activities/{activity_id}/streams", "/api/v1/me/privacy-zones",
                     "/api/v1/segments/{segment_id}/leaderboard", "/api/v1/activities/{activity_id}/export/original"):
        assert contract in spec["paths"], contract
