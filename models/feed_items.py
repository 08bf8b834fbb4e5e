"""Read-only loading of one feed page's items, with everything the viewer-specific rules need, in one query.

The home feed shows up to 200 items per page and is read far more often than anything in it changes, so
the page is loaded as plain rows rather than ORM objects: the activities and posts asked for (and the
activities those posts share), each with its author, the viewer's follow and block state towards that
author, whether the viewer gave kudos, and the counts kept exact by PostgreSQL's triggers. Only the
polyline this viewer may see comes back — the owner's own summary, or the privacy-filtered one stored
for everyone else — never the whole stored geometry.

Nothing here decides visibility: the domain (:mod:`domain.feed.reading`) passes in the shared rule, compiled
to SQL, and the statement evaluates it per row (models know no rules).

The feed's statements are server-side prepared once per database connection and run on their generic plans
(:class:`Prepared`): planning the page query took PostgreSQL two to three times as long as running it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from models.db import db
from models.social import ACCEPTED


class ItemRow(NamedTuple):
    """One activity (``kind == "a"``) or post (``"p"``) with its author and the viewer's relation to both."""

    kind: str
    id: int
    user_id: int
    visibility: str
    date: datetime  # an activity's start time, a post's creation time
    title: str  # an activity's name, a post's text
    sport_type: str | None
    distance_m: float | None
    moving_time_s: float | None
    elapsed_time_s: float | None
    elevation_gain_m: float | None
    avg_speed_mps: float | None
    has_gps: bool | None
    #: Whether this viewer gets a map at all (the owner: a summary polyline exists; anyone else: the stored
    #: non-owner view has a map), and its summary polyline.
    has_map: bool
    summary_polyline: str | None
    #: The stored non-owner view predates the owner's current privacy settings: recompute before showing.
    stale_public: bool
    shared_activity_id: int | None  # a post sharing an activity
    group_id: int | None
    kudos_count: int
    comment_count: int
    kudoed: bool
    display_name: str
    avatar_url: str | None
    is_private: bool
    followed: bool  # the viewer's follow of the author is accepted
    visible: bool  # the viewer may see this item (the domain's rule, evaluated in the statement)


class Prepared:
    """A statement PostgreSQL plans once per connection (``PREPARE``), then only executes.

    ``sql`` names its parameters ``:name``; ``params`` gives each one's PostgreSQL type, in order. Prepared
    statements belong to the database session, not the transaction (a rollback keeps them), so which are
    prepared is remembered in the pooled connection's ``info``, which lives and dies with that connection.

    Each execution asks for the generic plan: left to itself PostgreSQL keeps re-planning (custom plans,
    0.5–1 ms each for the page query) because it cannot compare a generic plan's cost on arrays of ids,
    while the generic plan (index probes throughout) runs as fast. ``SET LOCAL`` goes in the same round trip
    and ends with the transaction; it only affects cached plans (prepared statements, PL/pgSQL), which for
    the rest of a feed read's transaction are the generic ones PostgreSQL would mostly pick anyway.
    """

    def __init__(self, name: str, sql: str, params: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.params = [p for p, _ in params]
        positions = {p: i for i, p in enumerate(self.params, start=1)}
        body = re.sub(r"(?<![:\w]):(\w+)", lambda m: f"${positions[m.group(1)]}", sql)
        self.prepare = f"PREPARE {name}({', '.join(t for _, t in params)}) AS {body}"
        self.execute_sql = ("SET LOCAL plan_cache_mode = force_generic_plan; "
                            f"EXECUTE {name}({', '.join(f'%({p})s' for p in self.params)})")

    def rows(self, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        conn = db.session.connection()
        prepared: set[str] = conn.info.setdefault("prepared_statements", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self.prepare)
            prepared.add(self.name)
        return list(conn.exec_driver_sql(self.execute_sql, {p: values[p] for p in self.params}))


# Posts first, so that the activities they share are loaded in the same statement (one array of ids: an
# ``OR id IN (subquery)`` would make PostgreSQL scan the table). Every EXISTS is a primary-key or
# unique-index probe. ``public -> 'map'`` is read only for other people's activities. ``{followed}`` and
# ``{visible}`` are conditions on ``items`` and ``:viewer`` given by the domain (see :func:`page_statement`).
# The stored counters count everyone; kudos and comments by athletes in a block with the viewer (``{blocked}``,
# also the domain's) are subtracted, only when there are such athletes (a CASE runs its subquery lazily).
_PAGE_SQL = """
WITH blocked AS (
  SELECT ARRAY({blocked}) AS ids
), p AS (
  SELECT id, user_id, visibility, created_at, text, activity_id, group_id,
         kudos_count - {unseen_kudos_p} AS kudos_count, comment_count - {unseen_comments_p} AS comment_count
  FROM posts, blocked WHERE id = ANY(:post_ids)
), a AS (
  SELECT id, user_id, visibility, start_time, name, sport_type, distance_m, moving_time_s, elapsed_time_s,
         elevation_gain_m, avg_speed_mps, has_gps, summary_polyline, public, privacy_version,
         kudos_count - {unseen_kudos_a} AS kudos_count, comment_count - {unseen_comments_a} AS comment_count
  FROM activities, blocked
  WHERE id = ANY(:activity_ids || ARRAY(SELECT activity_id FROM p WHERE activity_id IS NOT NULL))
), items AS (
  SELECT 'a' AS kind, a.id, a.user_id, a.visibility, a.start_time AS date, a.name AS title, a.sport_type,
         {totals}, a.has_gps,
         CASE WHEN a.user_id = :viewer THEN coalesce(a.summary_polyline, '') <> ''
              ELSE jsonb_typeof(a.public -> 'map') = 'object' AND a.public -> 'map' <> '{}'::jsonb END
           AS has_map,
         CASE WHEN a.user_id = :viewer THEN a.summary_polyline
              ELSE a.public -> 'map' ->> 'summary_polyline' END AS summary_polyline,
         a.user_id <> :viewer AND (a.privacy_version <> u.privacy_version
                                   OR (a.has_gps AND coalesce(a.public ->> 'v', '') <> '{public_version}'))
           AS stale_public,
         NULL::bigint AS shared_activity_id, NULL::bigint AS group_id, a.kudos_count, a.comment_count,
         EXISTS (SELECT 1 FROM kudos k WHERE k.activity_id = a.id AND k.user_id = :viewer) AS kudoed,
         u.display_name, u.avatar_url, u.is_private
  FROM a JOIN users u ON u.id = a.user_id
  UNION ALL
  SELECT 'p', p.id, p.user_id, p.visibility, p.created_at, p.text, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         false, NULL, false, p.activity_id, p.group_id, p.kudos_count, p.comment_count,
         EXISTS (SELECT 1 FROM kudos k WHERE k.post_id = p.id AND k.user_id = :viewer),
         u.display_name, u.avatar_url, u.is_private
  FROM p JOIN users u ON u.id = p.user_id
)
SELECT items.*, ({followed}) AS followed, ({visible}) AS visible
FROM items
"""


def _unseen(table: str, column: str, target: str) -> str:
    return (f"CASE WHEN cardinality(blocked.ids) = 0 THEN 0 ELSE (SELECT count(*) FROM {table} x "
            f"WHERE x.{column} = {target}.id AND x.user_id = ANY(blocked.ids)) END")


#: Figures of an activity that a non-owner gets from the stored non-owner view when part of the track is hidden.
_TOTALS = ("distance_m", "moving_time_s", "elapsed_time_s", "elevation_gain_m", "avg_speed_mps")


def _totals() -> str:
    # A filtered view's figures are the visible stretch's; a filtered view without them gives NULL, not the
    # whole track's (which would measure the hidden part).
    return ", ".join(
        f"CASE WHEN a.user_id <> :viewer AND (a.public ->> 'filtered') = 'true' "
        f"THEN (a.public -> 'totals' ->> '{name}')::float8 ELSE a.{name} END AS {name}" for name in _TOTALS)


def page_statement(followed: str, visible: str, blocked: str, public_version: int) -> Prepared:
    """The page statement, given the SQL conditions (on ``items`` — ``user_id``, ``visibility``,
    ``is_private`` — and ``:viewer``) that the viewer follows the item's author and may see the item, the
    query of the athletes in a block with ``:viewer``, and the current version of the stored non-owner view
    (an older one is reported stale, to be recomputed before it is shown)."""
    sql = _PAGE_SQL
    for name, text in (("followed", followed), ("visible", visible), ("blocked", blocked), ("totals", _totals()),
                       ("public_version", str(int(public_version))),
                       ("unseen_kudos_p", _unseen("kudos", "post_id", "posts")),
                       ("unseen_comments_p", _unseen("comments", "post_id", "posts")),
                       ("unseen_kudos_a", _unseen("kudos", "activity_id", "activities")),
                       ("unseen_comments_a", _unseen("comments", "activity_id", "activities"))):
        sql = sql.replace("{" + name + "}", text)
    return Prepared("feed_page_items", sql,
                    [("viewer", "bigint"), ("activity_ids", "bigint[]"), ("post_ids", "bigint[]")])


_FOLLOWEES = Prepared("feed_followees", """
SELECT f.followee_id FROM follows f JOIN users u ON u.id = f.followee_id
WHERE f.follower_id = :user AND f.status = :accepted
  AND (u.follower_count > :floor) = :merged
""", [("user", "bigint"), ("accepted", "text"), ("floor", "bigint"), ("merged", "boolean")])


def load_page_items(page: Prepared, viewer_id: int, activity_ids: Collection[int],
                    post_ids: Collection[int]) -> tuple[dict[int, ItemRow], dict[int, ItemRow]]:
    """(activities by id, posts by id) of one page, including the activities the posts share.

    Deleted items are simply absent. One round trip to PostgreSQL whatever the page's length.
    """
    if not activity_ids and not post_ids:
        return {}, {}
    rows = page.rows({"viewer": viewer_id, "activity_ids": list(activity_ids), "post_ids": list(post_ids)})
    activities: dict[int, ItemRow] = {}
    posts: dict[int, ItemRow] = {}
    for values in rows:
        row = ItemRow(*values)
        (activities if row.kind == "a" else posts)[row.id] = row
    return activities, posts


def accepted_followees(user_id: int, *, floor: int, above: bool) -> list[int]:
    """Accepted followees of ``user_id`` with more (``above``) or no more than ``floor`` followers."""
    return [followee for followee, in _FOLLOWEES.rows(
        {"user": user_id, "accepted": ACCEPTED, "floor": floor, "merged": above})]
