"""The home feed through the API, on rows inside the test's transaction.

No worker runs here: the fan-out functions the Celery tasks wrap are called directly (in an app context,
so they share the test's connection). Redis is real; ``client`` flushes this worker's Redis database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from domain.algorithms.geo import haversine_m
from domain.algorithms.polylines import decode
from models.feed import feed_key, member
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload

API = "/api/v1"
BASE = datetime(2026, 10, 1, 7, 0, tzinfo=UTC)


def manual(client, headers, minutes: float = 0, **fields: Any) -> int:
    start = (BASE + timedelta(minutes=minutes)).isoformat()
    body = {"sport_type": "running", "start_date": start, "elapsed_time_s": 1800, "distance_m": 5000, **fields}
    resp = client.post(f"{API}/activities", headers=headers, json=body)
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def post(client, headers, text: str = "hello", **fields: Any) -> int:
    resp = client.post(f"{API}/posts", headers=headers, json={"text": text, **fields})
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def feed(client, headers, **params: Any) -> dict:
    resp = client.get(f"{API}/feed", headers=headers, query_string=params)
    assert resp.status_code == 200, resp.json
    return resp.json


def keys(page: dict) -> list[tuple[str, int]]:
    return [(item["type"], item["id"]) for item in page["items"]]


@pytest.fixture
def run(app) -> Callable[..., Any]:
    """Call a tasks.feed function as the worker would: inside an app context."""
    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        from domain.feed import fanout as feed_tasks

        with app.app_context():
            return getattr(feed_tasks, name)(*args, **kwargs)

    return call


@pytest.fixture
def redis_feed(redis_clean) -> Callable[[int], set[str]]:
    def members(user_id: int) -> set[str]:
        return {m.decode() for m in redis_clean.zrange(feed_key(user_id), 0, -1)}

    return members


@pytest.fixture
def threshold(app) -> Iterator[Callable[[int], None]]:
    before = app.config.get("FEED_FANOUT_THRESHOLD")

    def set_to(value: int) -> None:
        app.config["FEED_FANOUT_THRESHOLD"] = value

    yield set_to
    if before is None:
        app.config.pop("FEED_FANOUT_THRESHOLD", None)
    else:
        app.config["FEED_FANOUT_THRESHOLD"] = before


def test_fan_out_reaches_followers_and_author_not_strangers(client, login, run, redis_feed):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    for headers in (ann, bob, cat):  # built (and empty) before anything is posted: the fan-out must fill them
        assert feed(client, headers)["items"] == []
    run_id = manual(client, ann, minutes=10, name="Tempo", elevation_gain_m=42.0)
    post_id = post(client, ann, "Race on Sunday!")
    assert run("fan_out_activity", run_id) == 2  # ann's own feed and bob's
    assert run("item_changed", "post", post_id) == 2

    assert redis_feed(bob_id) == {member("activity", run_id), member("post", post_id)}
    assert redis_feed(cat_id) == set()
    page = feed(client, bob)
    assert keys(page) == [("post", post_id), ("activity", run_id)]  # the post is newer (created now)
    assert page["next_cursor"] is None
    act_item = page["items"][1]
    assert act_item["date"].startswith("2026-10-01T07:10:00")
    assert act_item["athlete"] == {"id": ann_id, "display_name": "ann", "avatar_url": None}
    activity = act_item["activity"]
    assert "post" not in act_item
    assert activity["name"] == "Tempo" and activity["sport_type"] == "running"
    assert activity["distance_m"] == 5000 and activity["moving_time_s"] == 1800
    assert activity["elapsed_time_s"] == 1800 and activity["elevation_gain_m"] == 42.0
    assert activity["avg_speed_mps"] == pytest.approx(5000 / 1800)
    assert activity["map"] is None and activity["kudos_count"] == 0 and activity["has_kudoed"] is False
    assert page["items"][0]["post"]["text"] == "Race on Sunday!" and page["items"][0]["post"]["activity"] is None
    assert keys(feed(client, ann)) == keys(page)
    assert feed(client, cat)["items"] == []

    # has_kudoed is per viewer; the counts come from the database's triggers.
    assert client.post(f"{API}/activities/{run_id}/kudos", headers=bob).status_code == 201
    assert client.post(f"{API}/posts/{post_id}/kudos", headers=bob).status_code == 201
    bob_items = feed(client, bob)["items"]
    assert bob_items[1]["activity"]["has_kudoed"] is True and bob_items[1]["activity"]["kudos_count"] == 1
    assert bob_items[0]["post"]["has_kudoed"] is True and bob_items[0]["post"]["kudos_count"] == 1
    ann_items = feed(client, ann)["items"]
    assert ann_items[1]["activity"]["has_kudoed"] is False and ann_items[1]["activity"]["kudos_count"] == 1


def test_only_me_stays_home_and_stale_entries_are_filtered_on_read(client, login, run, redis_feed, redis_clean):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    for headers in (ann, bob, cat):
        feed(client, headers)
    secret = manual(client, ann, minutes=1, visibility="only_me")
    friends = manual(client, ann, minutes=2, visibility="followers")
    run("fan_out_activity", secret)
    run("fan_out_activity", friends)
    assert redis_feed(ann_id) == {member("activity", secret), member("activity", friends)}
    assert redis_feed(bob_id) == {member("activity", friends)}
    assert keys(feed(client, bob)) == [("activity", friends)]

    # Entries that should never have been there (a lost removal, a bug): the read path must not show them,
    # and drops them from the cache.
    redis_clean.zadd(feed_key(cat_id), {member("activity", friends): 1.0, member("activity", secret): 2.0})
    redis_clean.zadd(feed_key(bob_id), {member("activity", secret): 3.0, member("activity", 999_999): 4.0})
    assert feed(client, cat)["items"] == []
    assert keys(feed(client, bob)) == [("activity", friends)]
    assert redis_feed(cat_id) == set() and redis_feed(bob_id) == {member("activity", friends)}


def test_visibility_change_and_delete(client, login, run, redis_feed):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    feed(client, bob)
    feed(client, ann)
    first = manual(client, ann, minutes=1)
    second = manual(client, ann, minutes=2)
    run("fan_out_activity", first)
    run("fan_out_activity", second)
    assert keys(feed(client, bob)) == [("activity", second), ("activity", first)]

    assert client.patch(f"{API}/activities/{first}", headers=ann, json={"visibility": "only_me"}).status_code == 200
    assert keys(feed(client, bob)) == [("activity", second)]  # at once, before any task ran
    run("item_changed", "activity", first)
    assert member("activity", first) not in redis_feed(bob_id)
    assert member("activity", first) in redis_feed(ann_id)
    client.patch(f"{API}/activities/{first}", headers=ann, json={"visibility": "followers"})
    run("item_changed", "activity", first)
    assert keys(feed(client, bob)) == [("activity", second), ("activity", first)]

    assert client.delete(f"{API}/activities/{second}", headers=ann).status_code == 204
    assert keys(feed(client, bob)) == [("activity", first)]
    run("item_removed", "activity", second, ann_id)
    assert redis_feed(bob_id) == {member("activity", first)} and member("activity", second) not in redis_feed(ann_id)


def test_unfollow_block_and_follow_backfill(client, login, run, redis_feed):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    old = [manual(client, ann, minutes=m) for m in (1, 2, 3)]
    feed(client, bob)  # built while bob follows nobody
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    assert redis_feed(bob_id) == set()
    assert run("backfill_follow", bob_id, ann_id) == 3
    assert keys(feed(client, bob)) == [("activity", i) for i in reversed(old)]

    assert client.delete(f"{API}/users/{ann_id}/follow", headers=bob).status_code == 204
    assert feed(client, bob)["items"] == []  # the read path checks the follow itself
    assert run("remove_author", bob_id, ann_id) == 0  # ... and already dropped the stale entries
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    run("backfill_follow", bob_id, ann_id)
    assert len(feed(client, bob)["items"]) == 3
    assert run("remove_author", bob_id, ann_id) == 0, "never removes while the follow exists"

    assert client.post(f"{API}/users/{bob_id}/block", headers=ann).status_code == 204
    assert run("remove_author", bob_id, ann_id) == 3
    assert redis_feed(bob_id) == set() and feed(client, bob)["items"] == []
    assert run("backfill_follow", bob_id, ann_id) == 0


def test_group_posts_and_shared_activities(client, login, run, redis_feed):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    feed(client, bob)
    feed(client, ann)
    group = client.post(f"{API}/groups", headers=ann, json={"name": "Club"}).json
    in_group = post(client, ann, "club only", group_id=group["id"])
    assert run("fan_out_post", in_group) == 0
    assert redis_feed(bob_id) == set() and redis_feed(ann_id) == set()

    hidden = manual(client, ann, minutes=5, visibility="only_me")
    shown = manual(client, ann, minutes=6)
    sharing_hidden = post(client, ann, "look", activity_id=hidden, visibility="everyone")
    sharing_shown = post(client, ann, "look again", activity_id=shown, visibility="everyone")
    for post_id in (sharing_hidden, sharing_shown):
        run("fan_out_post", post_id)
    items = {item["id"]: item["post"] for item in feed(client, bob)["items"] if item["type"] == "post"}
    assert items[sharing_hidden]["activity"] is None  # sharing never widens an activity's audience
    assert items[sharing_shown]["activity"]["id"] == shown
    assert items[sharing_shown]["activity"]["athlete"]["id"] == ann_id
    own = {item["id"]: item["post"] for item in feed(client, ann)["items"] if item["type"] == "post"}
    assert own[sharing_hidden]["activity"]["id"] == hidden
    assert in_group not in own


def test_cursor_neither_skips_nor_repeats_while_items_arrive(client, login, run):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    feed(client, bob)
    # Ties on purpose: several items share a start second, some of them across a page boundary.
    minutes = [0, 1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11, 12, 13]
    older = [manual(client, ann, minutes=m) for m in minutes]
    for activity_id in older:
        run("fan_out_activity", activity_id)
    expected = keys(feed(client, bob, limit=100))
    assert len(expected) == len(older)

    seen: list[tuple[str, int]] = []
    cursor = None
    arrivals = 0
    while True:
        page = feed(client, bob, limit=4, **({"cursor": cursor} if cursor else {}))
        seen += keys(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # Between page requests: newer items arrive, and an item with the same time as the ones on
        # screen (it sorts among them, so it may land on either side of the cursor).
        newer = manual(client, ann, minutes=100 + arrivals)
        run("fan_out_activity", newer)
        arrivals += 1
    assert seen == expected
    assert len(set(seen)) == len(seen)
    assert arrivals >= 5
    assert len(feed(client, bob, limit=200)["items"]) == len(older) + arrivals


def test_redis_loss_rebuilds_the_same_feed(client, login, run, redis_clean):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    client.post(f"{API}/users/{cat_id}/follow", headers=bob)
    feed(client, bob)
    made = [manual(client, ann, minutes=1), manual(client, cat, minutes=2), manual(client, ann, minutes=3,
                                                                                 visibility="followers")]
    made.append(post(client, cat, "hi"))
    manual(client, ann, minutes=4, visibility="only_me")
    for activity_id in made[:3]:
        run("fan_out_activity", activity_id)
    run("fan_out_post", made[3])
    before = feed(client, bob)
    assert len(before["items"]) == 4
    redis_clean.flushdb()
    assert feed(client, bob) == before
    # The operator's rebuild (clear=True) gives the same feed too.
    assert run("rebuild_user_feed", bob_id) == 4
    assert feed(client, bob) == before


def test_large_accounts_are_merged_at_read_time(client, login, run, redis_feed, threshold):
    ann, ann_id = login("ann")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    dan, dan_id = login("dan")
    for headers in (bob, cat):
        client.post(f"{API}/users/{ann_id}/follow", headers=headers)
    client.post(f"{API}/users/{dan_id}/follow", headers=bob)
    for headers in (ann, bob, cat, dan):
        feed(client, headers)
    threshold(1)  # ann (2 followers) is now a large account; dan (1) is not
    big = manual(client, ann, minutes=5)
    small = manual(client, dan, minutes=6)
    assert run("fan_out_activity", big) == 1  # ann's own feed only
    assert run("fan_out_activity", small) == 2
    assert member("activity", big) not in redis_feed(bob_id) | redis_feed(cat_id)
    assert keys(feed(client, bob)) == [("activity", small), ("activity", big)]
    assert keys(feed(client, cat)) == [("activity", big)]
    assert keys(feed(client, ann)) == [("activity", big)]
    assert keys(feed(client, dan)) == [("activity", small)]
    # Followers-only and unfollows are still checked per viewer on the merged items.
    hidden = manual(client, ann, minutes=7, visibility="only_me")
    run("fan_out_activity", hidden)
    client.delete(f"{API}/users/{ann_id}/follow", headers=cat)
    assert feed(client, cat)["items"] == []
    assert keys(feed(client, bob)) == [("activity", small), ("activity", big)]


def test_the_feed_map_never_shows_a_privacy_zone(client, login, app, run):
    from tasks import stages

    ann, ann_id = login("ann")
    bob, _ = login("bob")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    feed(client, bob)
    # Long enough that ~300 points lie beyond anything either 300 m zone may hide (~1.7 km, docs/privacy.md).
    track = synthetic_track(seed=31, n_points=4000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    work = (float(track.lat[700]), float(track.lon[700]))
    for lat, lng in (home, work):
        assert client.post(f"{API}/me/privacy-zones", headers=ann,
                           json={"lat": lat, "lng": lng, "radius_m": 300}).status_code == 201
    resp = upload(client, ann, to_gpx(track), "a.gpx")
    assert resp.status_code == 201, resp.json
    with app.app_context():
        stages.ingest.run(resp.json["id"], last=True)
    activity_id = client.get(f"{API}/uploads/{resp.json['id']}", headers=ann).json["activity_id"]
    run("fan_out_activity", activity_id)

    seen = feed(client, bob)["items"][0]["activity"]
    lat, lng = decode(seen["map"]["summary_polyline"])
    assert lat.size > 10, "the visible part is still drawn"
    for zone_lat, zone_lng in (home, work):
        assert float(np.min(haversine_m(zone_lat, zone_lng, lat, lng))) > 300
    own = feed(client, ann)["items"][0]["activity"]
    own_lat, own_lng = decode(own["map"]["summary_polyline"])
    assert haversine_m(home[0], home[1], own_lat[0], own_lng[0]) < 5  # the owner sees the whole route


def test_bad_arguments(client, login):
    ann, _ = login("ann")
    assert client.get(f"{API}/feed?cursor=not-a-cursor", headers=ann).status_code == 400
    from domain.pagination import encode_cursor

    with client.application.app_context():  # cursors are signed with the app's secret
        cursor = encode_cursor(1.0, "x:1")
    assert client.get(f"{API}/feed?cursor={cursor}", headers=ann).status_code == 400
    assert client.get(f"{API}/feed?limit=0", headers=ann).status_code == 422
    assert client.get(f"{API}/feed").status_code == 401


def _with_datetimes(page: dict) -> dict:
    """The JSON page with its dates parsed back, as the service's objects would hold them."""
    def activity(body: dict | None) -> dict | None:
        return None if body is None else {**body, "start_date": datetime.fromisoformat(body["start_date"])}

    items = []
    for item in page["items"]:
        out = {**item, "date": datetime.fromisoformat(item["date"])}
        if "activity" in item:
            out["activity"] = activity(item["activity"])
        if "post" in item:
            out["post"] = {**item["post"], "created_at": datetime.fromisoformat(item["post"]["created_at"]),
                           "activity": activity(item["post"]["activity"])}
        items.append(out)
    return {**page, "items": items}


def test_page_is_the_schema_dump_and_matches_the_activity_endpoint(client, login, app, run):
    """The feed builds its JSON without marshmallow: it must be exactly what FeedPageSchema would dump, and
    every activity in it must agree with GET /activities/<id> for the same viewer (privacy included, also
    when the owner's privacy settings changed after the map was stored)."""
    from tasks import stages
    from webapp.feed.schemas import FeedPageSchema

    ann, ann_id = login("ann")
    bob, _ = login("bob")
    cat, cat_id = login("cat")
    client.post(f"{API}/users/{ann_id}/follow", headers=bob)
    client.post(f"{API}/users/{cat_id}/follow", headers=bob)
    for headers in (ann, bob, cat):
        feed(client, headers)
    # 3.8 km from home at the end: well past anything the 300 m zone below may hide (docs/privacy.md).
    track = synthetic_track(seed=37, n_points=4000, speed_mps=3.0, noise_m=2.0)
    resp = upload(client, ann, to_gpx(track), "a.gpx")
    assert resp.status_code == 201, resp.json
    with app.app_context():
        stages.ingest.run(resp.json["id"], last=True)
    gps = client.get(f"{API}/uploads/{resp.json['id']}", headers=ann).json["activity_id"]
    plain = manual(client, ann, minutes=3, name="Easy", visibility="followers")
    cats = manual(client, cat, minutes=4, name="Cat's run", elevation_gain_m=12.5)
    shares = post(client, cat, "look at this", activity_id=cats)
    shares_gps = post(client, ann, "route", activity_id=gps)
    for activity_id in (gps, plain, cats):
        run("fan_out_activity", activity_id)
    for post_id in (shares, shares_gps):
        run("fan_out_post", post_id)
    assert client.post(f"{API}/activities/{gps}/kudos", headers=bob).status_code == 201
    assert client.post(f"{API}/posts/{shares}/kudos", headers=bob).status_code == 201
    assert client.post(f"{API}/activities/{gps}/comments", headers=bob, json={"text": "nice"}).status_code == 201
    # A zone created after the upload: the stored non-owner map is stale and must be recomputed on read.
    home = (float(track.lat[0]), float(track.lon[0]))
    assert client.post(f"{API}/me/privacy-zones", headers=ann,
                       json={"lat": home[0], "lng": home[1], "radius_m": 300}).status_code == 201

    for headers in (bob, ann, cat):
        page = feed(client, headers, limit=200)
        assert page == FeedPageSchema().dump(_with_datetimes(page))
        bodies = [item["activity"] for item in page["items"] if item["type"] == "activity"]
        bodies += [item["post"]["activity"] for item in page["items"]
                   if item["type"] == "post" and item["post"]["activity"] is not None]
        assert bodies
        for body in bodies:
            full = client.get(f"{API}/activities/{body['id']}", headers=headers)
            assert full.status_code == 200
            expected = {k: full.json[k] for k in ("athlete", "name", "sport_type", "visibility", "start_date",
                                                   "distance_m", "moving_time_s", "elapsed_time_s",
                                                   "elevation_gain_m", "avg_speed_mps", "has_gps")}
            assert {k: body[k] for k in expected} == expected
            full_map = full.json["map"]
            assert body["map"] == ({"summary_polyline": full_map["summary_polyline"]} if full_map else None)
            comments = client.get(f"{API}/activities/{body['id']}/comments", headers=headers).json
            assert body["comment_count"] == len(comments["items"])

    bob_items = {(item["type"], item["id"]): item for item in feed(client, bob, limit=200)["items"]}
    assert set(bob_items) == {("activity", gps), ("activity", plain), ("activity", cats), ("post", shares),
                              ("post", shares_gps)}
    assert bob_items[("activity", gps)]["activity"]["has_kudoed"] is True
    assert bob_items[("activity", gps)]["activity"]["kudos_count"] == 1
    assert bob_items[("activity", gps)]["activity"]["comment_count"] == 1
    assert bob_items[("activity", plain)]["activity"]["has_kudoed"] is False
    assert bob_items[("post", shares)]["post"]["has_kudoed"] is True
    assert bob_items[("post", shares)]["post"]["activity"]["elevation_gain_m"] == 12.5
    lat, lng = decode(bob_items[("activity", gps)]["activity"]["map"]["summary_polyline"])
    assert float(np.min(haversine_m(home[0], home[1], lat, lng))) > 300  # the new zone is already applied
    own = {(item["type"], item["id"]): item for item in feed(client, ann, limit=200)["items"]}
    own_lat, own_lng = decode(own[("activity", gps)]["activity"]["map"]["summary_polyline"])
    assert haversine_m(home[0], home[1], own_lat[0], own_lng[0]) < 5
    assert own[("activity", gps)]["activity"]["has_kudoed"] is False
    assert own[("activity", plain)]["activity"]["map"] is None
