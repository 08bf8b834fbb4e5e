"""Kudos and comments on activities and posts: once per athlete, exact counts under concurrency, visibility.

The feed hooks in tasks.feed are replaced by recorders (follows, blocks and posts call them; what the feed
does with those calls is tested with the feed).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.social import make_activity, record_feed_calls
from tests.support.social import make_post as make_post_body


@pytest.fixture(autouse=True)
def feed_calls(monkeypatch):
    return record_feed_calls(monkeypatch)


def make_post(client, headers, **fields) -> int:
    return make_post_body(client, headers, **fields)["id"]


def make_target(client, headers, collection: str, **fields) -> str:
    """The URL of a new activity or post."""
    maker = make_activity if collection == "activities" else make_post
    return f"/api/v1/{collection}/{maker(client, headers, **fields)}"


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


BOTH = pytest.mark.parametrize("collection", ["activities", "posts"])


@BOTH
def test_kudos_once_per_athlete_and_idempotent_removal(client, login, collection):
    ann, _ = login("ann")
    bob, bob_id = login("bob", display_name="Bob")
    url = make_target(client, ann, collection)

    first = client.post(f"{url}/kudos", headers=bob)
    assert first.status_code == 201 and first.json == {"kudos_count": 1, "has_kudoed": True}
    again = client.post(f"{url}/kudos", headers=bob)
    assert again.status_code == 200 and again.json == {"kudos_count": 1, "has_kudoed": True}
    page = client.get(f"{url}/kudos", headers=ann).json
    assert ids(page) == [bob_id] and page["items"][0]["display_name"] == "Bob" and page["next_cursor"] is None

    for _ in range(2):
        resp = client.delete(f"{url}/kudos", headers=bob)
        assert resp.status_code == 200 and resp.json == {"kudos_count": 0, "has_kudoed": False}
    assert ids(client.get(f"{url}/kudos", headers=ann).json) == []


def test_post_shows_counts_and_the_viewers_kudos(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    post_id = make_post(client, ann)
    client.post(f"/api/v1/posts/{post_id}/kudos", headers=bob)
    client.post(f"/api/v1/posts/{post_id}/comments", json={"text": "Great"}, headers=bob)
    as_bob = client.get(f"/api/v1/posts/{post_id}", headers=bob).json
    as_ann = client.get(f"/api/v1/posts/{post_id}", headers=ann).json
    assert (as_bob["kudos_count"], as_bob["comment_count"], as_bob["has_kudoed"]) == (1, 1, True)
    assert (as_ann["kudos_count"], as_ann["has_kudoed"]) == (1, False)


@BOTH
def test_no_kudos_on_your_own(client, login, collection):
    ann, _ = login("ann")
    url = make_target(client, ann, collection)
    assert client.post(f"{url}/kudos", headers=ann).status_code == 422
    # Commenting on your own is fine.
    assert client.post(f"{url}/comments", json={"text": "Windy today"}, headers=ann).status_code == 201


@BOTH
def test_nothing_on_what_the_viewer_may_not_see(client, login, collection):
    ann, ann_id = login("ann")
    fan, _ = login("fan")
    stranger, _ = login("stranger")
    client.post(f"/api/v1/users/{ann_id}/follow", headers=fan)
    url = make_target(client, ann, collection, visibility="followers")

    assert client.post(f"{url}/kudos", headers=fan).status_code == 201
    for method, path, body in (("post", "kudos", None), ("delete", "kudos", None), ("get", "kudos", None),
                               ("get", "comments", None), ("post", "comments", {"text": "hi"})):
        resp = getattr(client, method)(f"{url}/{path}", headers=stranger, json=body)
        assert resp.status_code == 404, (method, path)
    missing = f"/api/v1/{collection}/999999"
    assert client.post(f"{missing}/kudos", headers=fan).status_code == 404
    assert client.get(f"{missing}/comments", headers=fan).status_code == 404


@BOTH
def test_blocked_athletes_cannot_interact(client, login, collection):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    url = make_target(client, ann, collection)
    bob_url = make_target(client, bob, collection)
    client.post(f"/api/v1/users/{bob_id}/block", headers=ann)
    assert client.post(f"{url}/kudos", headers=bob).status_code == 404
    assert client.post(f"{url}/comments", json={"text": "hey"}, headers=bob).status_code == 404
    # Both ways: the blocker can't reach the blocked athlete's things either.
    assert client.post(f"{bob_url}/kudos", headers=ann).status_code == 404
    assert client.get(f"{bob_url}/comments", headers=ann).status_code == 404
    assert client.get(f"{url}/kudos", headers=ann).json["items"] == []


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001, None, 5])
def test_invalid_comments_are_422(client, login, text):
    ann, _ = login("ann")
    url = make_target(client, ann, "activities")
    assert client.post(f"{url}/comments", json={"text": text}, headers=ann).status_code == 422
    assert client.post(f"{url}/comments", json={}, headers=ann).status_code == 422


@BOTH
def test_comments_oldest_first_with_cursor_and_exact_count(client, login, collection):
    ann, _ = login("ann")
    bob, bob_id = login("bob", display_name="Bob")
    url = make_target(client, ann, collection)
    posted = []
    for i in range(5):
        resp = client.post(f"{url}/comments", json={"text": f"  comment {i} "}, headers=bob if i % 2 else ann)
        assert resp.status_code == 201
        posted.append(resp.json["id"])
    longest = client.post(f"{url}/comments", json={"text": "y" * 2000}, headers=bob)
    assert longest.status_code == 201
    assert longest.json["athlete"] == {"id": bob_id, "display_name": "Bob", "avatar_url": None}
    posted.append(longest.json["id"])

    page = client.get(f"{url}/comments?limit=4", headers=bob).json
    seen = ids(page)
    assert page["items"][0]["text"] == "comment 0"
    late = client.post(f"{url}/comments", json={"text": "late"}, headers=ann).json["id"]
    while page["next_cursor"]:
        page = client.get(f"{url}/comments?limit=4&cursor={page['next_cursor']}", headers=bob).json
        seen += ids(page)
    assert seen == [*posted, late]
    count_key = "comment_count"
    if collection == "posts":
        assert client.get(url, headers=ann).json[count_key] == 7
    else:
        from models import Activity, db

        assert db.session.get(Activity, int(url.rsplit("/", 1)[1])).comment_count == 7
    assert client.get(f"{url}/comments?cursor=nope", headers=ann).status_code == 400


@BOTH
def test_who_may_delete_a_comment(client, login, collection):
    ann, _ = login("ann")
    bob, _ = login("bob")
    cat, _ = login("cat")
    url = make_target(client, ann, collection)
    by_bob = [client.post(f"{url}/comments", json={"text": f"c{i}"}, headers=bob).json for i in range(2)]
    assert by_bob[0]["can_delete"] is True
    listed = {c["id"]: c["can_delete"] for c in client.get(f"{url}/comments", headers=cat).json["items"]}
    assert listed == {by_bob[0]["id"]: False, by_bob[1]["id"]: False}

    assert client.delete(f"/api/v1/comments/{by_bob[0]['id']}", headers=cat).status_code == 403
    assert client.delete(f"/api/v1/comments/{by_bob[0]['id']}", headers=bob).status_code == 204  # author
    assert client.delete(f"/api/v1/comments/{by_bob[1]['id']}", headers=ann).status_code == 204  # owner
    assert client.get(f"{url}/comments", headers=ann).json["items"] == []
    assert client.delete(f"/api/v1/comments/{by_bob[1]['id']}", headers=ann).status_code == 404


def test_a_hidden_comment_is_404_for_others_but_its_author_may_still_delete_it(client, login):
    ann, _ = login("ann")
    bob, _ = login("bob")
    cat, _ = login("cat")
    url = make_target(client, ann, "activities")
    comment_id = client.post(f"{url}/comments", json={"text": "nice"}, headers=bob).json["id"]
    client.patch(url, json={"visibility": "only_me"}, headers=ann)
    assert client.delete(f"/api/v1/comments/{comment_id}", headers=cat).status_code == 404
    assert client.delete(f"/api/v1/comments/{comment_id}", headers=bob).status_code == 204


def test_lists_leave_out_athletes_in_a_block_with_the_viewer(client, login):
    ann, _ = login("ann")
    bob, bob_id = login("bob")
    cat, cat_id = login("cat")
    url = make_target(client, ann, "activities")
    for headers in (bob, cat):
        client.post(f"{url}/kudos", headers=headers)
        client.post(f"{url}/comments", json={"text": "hi"}, headers=headers)
    client.post(f"/api/v1/users/{cat_id}/block", headers=bob)  # between two commenters, not the owner
    assert ids(client.get(f"{url}/kudos", headers=bob).json) == [bob_id]
    assert [c["athlete"]["id"] for c in client.get(f"{url}/comments", headers=bob).json["items"]] == [bob_id]
    assert set(ids(client.get(f"{url}/kudos", headers=ann).json)) == {bob_id, cat_id}


def test_kudos_pages_newest_first_without_repeats(client, login):
    ann, _ = login("ann")
    url = make_target(client, ann, "posts")
    givers = []
    for i in range(7):
        headers, uid = login(f"fan{i}")
        assert client.post(f"{url}/kudos", headers=headers).status_code == 201
        givers.append(uid)
    seen: list[int] = []
    page = client.get(f"{url}/kudos?limit=3", headers=ann).json
    seen += ids(page)
    while page["next_cursor"]:
        page = client.get(f"{url}/kudos?limit=3&cursor={page['next_cursor']}", headers=ann).json
        seen += ids(page)
    assert seen == givers[::-1]


@BOTH
def test_concurrent_kudos_and_comments_count_exactly(app, live_client, live_login, collection):
    """20 athletes give kudos at once while one of them taps five more times: exactly 20, one each."""
    owner, _ = live_login("owner")
    url = make_target(live_client, owner, collection)
    fans = [live_login(f"fan{i}")[0] for i in range(20)]
    double_tapper = fans[0]
    jobs = [("kudos", h) for h in fans] + [("kudos", double_tapper)] * 5 + [("comments", h) for h in fans[:10]]
    start = threading.Barrier(len(jobs))

    def run(job: tuple[str, dict]) -> int:
        what, headers = job
        client = app.test_client()  # one client per thread, as separate devices would be
        start.wait()
        if what == "kudos":
            return client.post(f"{url}/kudos", headers=headers).status_code
        return client.post(f"{url}/comments", json={"text": "go!"}, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        codes = list(pool.map(run, jobs))
    kudos_codes = codes[:25]
    assert set(codes[25:]) == {201}
    assert kudos_codes.count(201) == 20 and kudos_codes.count(200) == 5

    state = live_client.delete(f"{url}/kudos", headers=fans[1]).json
    assert state == {"kudos_count": 19, "has_kudoed": False}
    page = live_client.get(f"{url}/kudos?limit=200", headers=owner).json
    assert len(ids(page)) == 19 == len(set(ids(page)))
    assert len(live_client.get(f"{url}/comments?limit=200", headers=owner).json["items"]) == 10
    notes = live_client.get("/api/v1/notifications?limit=200", headers=owner).json["items"]
    assert sorted(n["kind"] for n in notes) == ["comment"] * 10 + ["kudos"] * 19
    if collection == "posts":
        post = live_client.get(url, headers=owner).json
        assert (post["kudos_count"], post["comment_count"]) == (19, 10)
    else:
        from models import Activity, db

        with app.app_context():
            activity = db.session.get(Activity, int(url.rsplit("/", 1)[1]))
            assert (activity.kudos_count, activity.comment_count) == (19, 10)


def test_activity_detail_and_list_show_counts_and_the_viewers_kudos(client, login):
    ann, ann_id = login("ann")
    bob, _ = login("bob")
    first = make_activity(client, ann)
    second = make_activity(client, ann)
    assert client.post(f"/api/v1/activities/{first}/kudos", headers=bob).status_code == 201
    assert client.post(f"/api/v1/activities/{first}/comments", json={"text": "Nice"}, headers=bob).status_code == 201

    as_bob = client.get(f"/api/v1/activities/{first}", headers=bob).json
    assert (as_bob["kudos_count"], as_bob["comment_count"], as_bob["has_kudoed"]) == (1, 1, True)
    as_ann = client.get(f"/api/v1/activities/{first}", headers=ann).json
    assert (as_ann["kudos_count"], as_ann["has_kudoed"]) == (1, False)

    listed = {a["id"]: a for a in client.get(f"/api/v1/users/{ann_id}/activities", headers=bob).json["items"]}
    assert (listed[first]["has_kudoed"], listed[first]["kudos_count"]) == (True, 1)
    assert (listed[second]["has_kudoed"], listed[second]["kudos_count"]) == (False, 0)
