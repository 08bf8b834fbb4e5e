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


def food_named(client: Any, headers: dict[str, str], name: str) -> dict[str, Any]:
    """The catalogue food of exactly this name (found through the API's own search)."""
    items = client.get("/api/v1/foods", query_string={"q": name, "limit": 50}, headers=headers).json["items"]
    return next(item for item in items if item["name"] == name)
