"""Gear: shoes and bikes with their accumulated distance, a default per sport, retired gear."""

from __future__ import annotations

from typing import Any


def _manual(client: Any, headers: dict[str, str], sport: str, distance: float, **extra: Any) -> Any:
    return client.post("/api/v1/activities", headers=headers, json={
        "sport_type": sport, "start_date": "2026-10-01T07:00:00+00:00", "elapsed_time_s": 1800,
        "distance_m": distance, **extra})


def test_gear_distance_defaults_and_retirement(client: Any, login: Any) -> None:
    ann, _ = login("ann")
    bob, _ = login("bob")
    shoes = client.post("/api/v1/me/gear", headers=ann, json={
        "kind": "shoes", "name": "Trainers", "default_sport_types": ["running", "trail_running"]}).json
    bike = client.post("/api/v1/me/gear", headers=ann, json={"kind": "bike", "name": "Gravel",
                                                               "default_sport_types": ["gravel_ride"]}).json
    assert shoes["distance_m"] == 0 and shoes["activity_count"] == 0

    run = _manual(client, ann, "running", 10_000).json
    trail = _manual(client, ann, "trail_running", 5_000).json
    ride = _manual(client, ann, "gravel_ride", 40_000).json
    swim = _manual(client, ann, "swimming", 1_000).json
    assert (run["gear_id"], trail["gear_id"], ride["gear_id"], swim["gear_id"]) == (
        shoes["id"], shoes["id"], bike["id"], None)
    mine = {g["id"]: g for g in client.get("/api/v1/me/gear", headers=ann).json}
    assert (mine[shoes["id"]]["distance_m"], mine[shoes["id"]]["activity_count"]) == (15_000, 2)
    assert mine[bike["id"]]["distance_m"] == 40_000

    # Moving an activity to other gear moves its distance; others never see which gear it was.
    moved = client.patch(f"/api/v1/activities/{trail['id']}", headers=ann, json={"gear_id": None})
    assert moved.json["gear_id"] is None
    assert client.get(f"/api/v1/me/gear/{shoes['id']}", headers=ann).json["distance_m"] == 10_000
    assert client.patch(f"/api/v1/activities/{run['id']}", headers=ann,
                        json={"gear_id": 10**9}).status_code == 422  # not one of hers

    # A sport has one default gear: claiming it takes it from the other.
    client.patch(f"/api/v1/me/gear/{bike['id']}", headers=ann, json={"default_sport_types": ["gravel_ride", "running"]})
    assert client.get(f"/api/v1/me/gear/{shoes['id']}", headers=ann).json["default_sport_types"] == ["trail_running"]

    # Retired: keeps its distance, drops its defaults, is no longer picked.
    retired = client.patch(f"/api/v1/me/gear/{shoes['id']}", headers=ann, json={"retired": True}).json
    assert retired["retired"] is True and retired["default_sport_types"] == [] and retired["distance_m"] == 10_000
    assert _manual(client, ann, "trail_running", 3_000).json["gear_id"] is None

    # Gear is private to its owner.
    assert client.get(f"/api/v1/me/gear/{shoes['id']}", headers=bob).status_code == 404
    assert client.patch(f"/api/v1/activities/{run['id']}", headers=bob, json={"name": "x"}).status_code in (403, 404)
    assert client.get("/api/v1/me/gear", headers=bob).json == []

    # Deleting gear leaves its activities without gear.
    assert client.delete(f"/api/v1/me/gear/{bike['id']}", headers=ann).status_code == 204
    assert client.get(f"/api/v1/activities/{ride['id']}", headers=ann).json["gear_id"] is None
