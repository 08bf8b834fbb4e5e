"""The shipped food catalogue, loaded once per test database (committed: tests roll back only their own rows)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask


@pytest.fixture(scope="session")
def food_catalogue(app: Flask) -> int:
    from domain.health import foods
    from models import db

    with app.app_context():
        if foods.catalogue_size("sr28") == 0:
            foods.import_catalogue()
        count = foods.catalogue_size("sr28")
        db.session.remove()
    return count


def own_health_records(client: Any, headers: dict[str, str]) -> dict[str, int]:
    """One record of each health kind for the signed-in athlete: the path ids of their owner's requests."""
    def create(path: str, body: dict[str, Any]) -> int:
        resp = client.post(f"/api/v1{path}", headers=headers, json=body)
        assert resp.status_code == 201, resp.json
        return int(resp.json["id"])

    at = "2026-10-01T07:00:00+00:00"
    food_id = create("/foods", {"name": "Porridge", "energy_kcal": 120})
    return {"food_id": food_id,
            "meal_id": create("/me/meals", {"meal_type": "breakfast", "eaten_at": at,
                                            "items": [{"food_id": food_id, "grams": 200}]}),
            "water_id": create("/me/water", {"ml": 300, "drunk_at": at}),
            "sleep_id": create("/me/sleep", {"start": "2026-09-30T22:00:00+00:00", "end": at}),
            "metric_id": create("/me/body-metrics", {"kind": "weight", "value": 70, "measured_at": at})}


def food_named(client: Any, headers: dict[str, str], name: str) -> dict[str, Any]:
    """The catalogue food of exactly this name (found through the API's own search)."""
    items = client.get("/api/v1/foods", query_string={"q": name, "limit": 50}, headers=headers).json["items"]
    return next(item for item in items if item["name"] == name)
