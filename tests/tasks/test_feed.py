"""The feed store on a real Redis, and the feed through the real worker (committed rows, the whole chain)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from domain.algorithms.geo import haversine_m
from domain.algorithms.polylines import decode
from models.feed import Entry, FeedStore, author_built_key, author_key, built_key, feed_key, member
from tests.support.synthetic import synthetic_track, to_gpx
from tests.support.uploads import upload_and_wait

API = "/api/v1"


# --- the store ---------------------------------------------------------------------------------------------

def test_window_is_a_keyset_over_merged_sets_with_ties(redis_clean):
    fs = FeedStore(redis_clean)
    redis_clean.zadd("k1", {"a:1": 10, "a:2": 20, "a:3": 20, "p:4": 20, "a:5": 30})
    redis_clean.zadd("k2", {"a:3": 20, "p:9": 20, "a:7": 5})
    everything = fs.window(["k1", "k2"], None, 100)
    assert [e.member for e in everything] == [b"a:5", b"p:9", b"p:4", b"a:3", b"a:2", b"a:1", b"a:7"]
    # Every cut point, every page size: pages concatenate to the whole, in order, without repeats.
    for size in (1, 2, 3):
        seen: list[Entry] = []
        after = None
        while page := fs.window(["k1", "k2"], after, size):
            seen += page
            after = page[-1]
        assert seen == everything
    # A newer item and one tied with the cursor but sorting before it never appear after the cursor.
    cursor = everything[2]  # (20, p:4)
    redis_clean.zadd("k1", {"a:99": 40, "z:0": 20})
    assert fs.window(["k1", "k2"], cursor, 100) == everything[3:]


def test_writes_go_only_to_built_feeds_and_are_trimmed(redis_clean):
    fs = FeedStore(redis_clean, size=5, trim_every=1)  # every write trims: exact sizes
    redis_clean.set(built_key(1), "1")
    redis_clean.set(built_key(3), "1")
    for i in range(8):
        assert fs.add_to_feeds([1, 2, 3], member("activity", i), float(i)) == 2
    assert redis_clean.zrange(feed_key(1), 0, -1) == [f"a:{i}".encode() for i in range(3, 8)]
    assert redis_clean.zcard(feed_key(3)) == 5
    assert not redis_clean.exists(feed_key(2))
    assert fs.add_to_author(7, "a:1", 1.0) == 0
    redis_clean.set(author_built_key(7), "1")
    assert fs.add_to_author(7, "a:1", 1.0) == 1 and redis_clean.zscore(author_key(7), "a:1") == 1.0
    with pytest.raises(ValueError):
        member("kudos", 1)


def test_lazy_trim_keeps_feeds_bounded_and_reads_exact(redis_clean):
    """The fan-out trims one write in TRIM_EVERY per feed; a read never sees more than the newest ``size``."""
    from models.feed import TRIM_EVERY, trim_slot

    size = 20
    fs = FeedStore(redis_clean, size=size)
    users = list(range(1, 41))
    for user_id in users:
        redis_clean.set(built_key(user_id), "1")
    cards: list[int] = []
    for i in range(400):
        assert fs.add_to_feeds(users, member("activity", i), float(i)) == len(users)
        cards += [redis_clean.zcard(feed_key(u)) for u in users]
    # Trimmed on the writes whose slot matches the user: bounded far below the 400 written, and trimming did
    # happen for every feed (a feed never trimmed would hold all 400).
    assert size < max(cards) < size + 5 * TRIM_EVERY
    assert {trim_slot(member("activity", i), TRIM_EVERY) for i in range(400)} == set(range(TRIM_EVERY))
    # The shared set of a large account is trimmed exactly on every write.
    redis_clean.set(author_built_key(99), "1")
    for i in range(30):
        fs.add_to_author(99, member("activity", i), float(i))
    assert redis_clean.zcard(author_key(99)) == size

    user = users[0]
    before = redis_clean.zcard(feed_key(user))
    built, page = fs.checked_window([feed_key(user)], None, 1000, markers=[built_key(user), built_key(999)],
                                    trim=[feed_key(user)])
    assert built == [True, False]
    newest = [member("activity", i).encode() for i in range(399, 399 - size, -1)]
    assert [e.member for e in page] == newest
    assert redis_clean.zcard(feed_key(user)) == size <= before
    # Paging by cursor from the last entry shows nothing older than the newest ``size``.
    assert fs.window([feed_key(user)], page[-1], 100) == []


def test_enqueue_helpers_never_fail_the_request(app, monkeypatch, caplog):
    from domain.feed import fanout as feed
    from tasks import feed as feed_tasks

    def broker_down(*_: Any, **__: Any) -> None:
        raise ConnectionRefusedError("broker down")

    for task in (feed_tasks.backfill_task, feed_tasks.remove_author_task, feed_tasks.item_changed_task,
                 feed_tasks.item_removed_task):
        monkeypatch.setattr(task, "apply_async", broker_down)
    with app.app_context():
        feed.enqueue_follow(1, 2)
        feed.enqueue_unfollow(1, 2)
        feed.enqueue_item_changed("post", 3)
        feed.enqueue_item_removed("activity", 4, 1)
    assert sum("could not send job feed." in r.getMessage() for r in caplog.records) == 4
    with pytest.raises(ValueError):
        feed.enqueue_item_changed("comment", 1)


# --- through the worker ------------------------------------------------------------------------------------

def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def feed_ids(client, headers, **params: Any) -> list[tuple[str, int]]:
    resp = client.get(f"{API}/feed", headers=headers, query_string=params)
    assert resp.status_code == 200, resp.json
    return [(item["type"], item["id"]) for item in resp.json["items"]]


def in_redis(client, user_id: int) -> set[str]:
    return {m.decode() for m in client.zrange(feed_key(user_id), 0, -1)}


@pytest.fixture
def gpx() -> Callable[[int], bytes]:
    return lambda seed: to_gpx(synthetic_track(seed=seed, n_points=600, speed_mps=3.0, noise_m=2.0))


@pytest.fixture
def tiny_threshold(app) -> Iterator[None]:
    before = app.config.get("FEED_FANOUT_THRESHOLD")
    app.config["FEED_FANOUT_THRESHOLD"] = 1
    yield
    if before is None:
        app.config.pop("FEED_FANOUT_THRESHOLD", None)
    else:
        app.config["FEED_FANOUT_THRESHOLD"] = before


def test_upload_reaches_followers_only_and_with_the_private_map(live_client, live_login, redis_clean):
    ann, ann_id = live_login("ann")
    bob, bob_id = live_login("bob")
    cat, cat_id = live_login("cat")
    assert live_client.post(f"{API}/users/{ann_id}/follow", headers=bob).status_code == 200
    for headers in (ann, bob, cat):
        assert feed_ids(live_client, headers) == []
    # ~500 points lie beyond anything the 400 m zone may hide (~2.3 km from home, docs/privacy.md).
    track = synthetic_track(seed=41, n_points=4000, speed_mps=3.0, noise_m=2.0)
    home = (float(track.lat[0]), float(track.lon[0]))
    assert live_client.post(f"{API}/me/privacy-zones", headers=ann,
                            json={"lat": home[0], "lng": home[1], "radius_m": 400}).status_code == 201
    public = upload_and_wait(live_client, ann, to_gpx(track), "a.gpx")
    friends = upload_and_wait(live_client, ann, to_gpx(synthetic_track(seed=42, n_points=600)), "b.gpx",
                              visibility="followers")
    assert public["status"] == friends["status"] == "ready"
    expected = [("activity", friends["activity_id"]), ("activity", public["activity_id"])]
    # The chain's feed stage ran before `ready`: the entries are in Redis, not rebuilt on read.
    assert in_redis(redis_clean, bob_id) == {member("activity", i) for _, i in expected}
    assert feed_ids(live_client, bob) == expected == feed_ids(live_client, ann)
    assert feed_ids(live_client, cat) == [] and in_redis(redis_clean, cat_id) == set()

    item = live_client.get(f"{API}/feed", headers=bob).json["items"][1]
    lat, lng = decode(item["activity"]["map"]["summary_polyline"])
    assert lat.size >= 2 and float(np.min(haversine_m(home[0], home[1], lat, lng))) > 400


def test_unfollow_follow_and_redis_loss_through_the_worker(live_client, live_login, redis_clean, gpx):
    ann, ann_id = live_login("ann")
    bob, bob_id = live_login("bob")
    done = [upload_and_wait(live_client, ann, gpx(s), f"{s}.gpx")["activity_id"] for s in (51, 52)]
    feed_ids(live_client, bob)  # built, empty: bob follows nobody yet
    assert live_client.post(f"{API}/users/{ann_id}/follow", headers=bob).status_code == 200
    wanted = {member("activity", i) for i in done}
    wait_until(lambda: in_redis(redis_clean, bob_id) == wanted)  # feed.backfill ran on the worker
    before = feed_ids(live_client, bob)
    assert sorted(i for _, i in before) == sorted(done)

    redis_clean.flushdb()  # Redis lost everything (this test's database index)
    assert feed_ids(live_client, bob) == before
    assert in_redis(redis_clean, bob_id) == wanted

    assert live_client.delete(f"{API}/users/{ann_id}/follow", headers=bob).status_code == 204
    assert feed_ids(live_client, bob) == []
    wait_until(lambda: in_redis(redis_clean, bob_id) == set())


def test_large_account_reaches_followers_through_the_read_merge(live_client, live_login, redis_clean, gpx,
                                                                tiny_threshold):
    star, star_id = live_login("star")
    fans = [live_login(name) for name in ("bob", "cat")]
    for headers, _ in fans:
        assert live_client.post(f"{API}/users/{star_id}/follow", headers=headers).status_code == 200
        feed_ids(live_client, headers)
    activity_id = upload_and_wait(live_client, star, gpx(61), "s.gpx")["activity_id"]
    for headers, fan_id in fans:
        assert member("activity", activity_id) not in in_redis(redis_clean, fan_id)  # not fanned out...
        assert feed_ids(live_client, headers) == [("activity", activity_id)]  # ... merged in at read
    assert redis_clean.zscore(author_key(star_id), member("activity", activity_id)) is not None
