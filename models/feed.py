"""Home feeds in Redis sorted sets: a cache of PostgreSQL truth, rebuilt from it whenever it is missing.

Keys:

* ``feed:<user>`` — the athlete's home feed: members ``a:<activity id>`` / ``p:<post id>``, scored by the
  activity's start time / the post's creation time in epoch seconds, trimmed to the newest :data:`FEED_SIZE`.
* ``feed:author:<user>`` — the author's own shareable items, read by the followers of very large accounts
  (the hybrid fan-out: such accounts are not copied into every follower's feed, they are merged at read).
* ``feed:built:<user>`` / ``feed:author:built:<user>`` — markers. A feed without its marker is not trusted:
  it was never built, or Redis lost it (restart, FLUSHALL, eviction), and the reader rebuilds it from
  PostgreSQL. Writers skip feeds that are not built, so Redis only holds the feeds of people who read them
  and nothing written before a rebuild is lost (the rebuild sets the marker *before* it reads PostgreSQL).

Order is Redis's own for equal scores: (score, member bytes) descending. Pages are keysets on that pair, so
items arriving while someone scrolls never shift the older ones (no repeats, no gaps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

FEED_SIZE = 1000
#: Followers written per Lua call: keeps each call short so other clients are not held up behind it.
FANOUT_BATCH = 1000

# KEYS: feed, marker pairs. ARGV: score, member, cap. Adds only to built feeds; trims to the newest cap.
_ADD_TO_BUILT = """
local score, member, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local written = 0
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    redis.call('ZADD', KEYS[i], score, member)
    if redis.call('ZCARD', KEYS[i]) > cap then
      redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -cap - 1)
    end
    written = written + 1
  end
end
return written
"""


def feed_key(user_id: int) -> str:
    return f"feed:{user_id}"


def built_key(user_id: int) -> str:
    return f"feed:built:{user_id}"


def author_key(user_id: int) -> str:
    return f"feed:author:{user_id}"


def author_built_key(user_id: int) -> str:
    return f"feed:author:built:{user_id}"


def member(kind: str, item_id: int) -> str:
    """``a:<id>`` for an activity, ``p:<id>`` for a post."""
    if kind not in ("activity", "post"):
        raise ValueError(f"unknown feed item kind {kind!r}")
    return f"{kind[0]}:{item_id}"


def parse_member(value: str | bytes) -> tuple[str, int]:
    text = value.decode() if isinstance(value, bytes) else value
    prefix, _, ident = text.partition(":")
    return ("activity" if prefix == "a" else "post"), int(ident)


def score_of(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(frozen=True, order=True)
class Entry:
    """One feed position. Ordering matches Redis's (score, then member bytes)."""

    score: float
    member: bytes

    @property
    def kind(self) -> str:
        return parse_member(self.member)[0]

    @property
    def item_id(self) -> int:
        return parse_member(self.member)[1]


class FeedStore:
    def __init__(self, client: redis.Redis, size: int = FEED_SIZE) -> None:
        self.r = client
        self.size = size
        self._add_to_built = client.register_script(_ADD_TO_BUILT)

    # -- markers ---------------------------------------------------------------------------------

    def is_built(self, user_id: int) -> bool:
        return bool(self.r.exists(built_key(user_id)))

    def authors_built(self, author_ids: Sequence[int]) -> list[bool]:
        if not author_ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for author_id in author_ids:
            pipe.exists(author_built_key(author_id))
        return [bool(v) for v in pipe.execute()]

    # -- writing ---------------------------------------------------------------------------------

    def add_to_feeds(self, user_ids: Iterable[int], member_: str, score: float) -> int:
        """Add one item to the feeds of ``user_ids`` that are built; returns how many were written."""
        keys: list[str] = []
        for user_id in user_ids:
            keys += (feed_key(user_id), built_key(user_id))
        return self._add_many(keys, member_, score)

    def add_to_author(self, author_id: int, member_: str, score: float) -> int:
        return self._add_many([author_key(author_id), author_built_key(author_id)], member_, score)

    def _add_many(self, keys: list[str], member_: str, score: float) -> int:
        if not keys:
            return 0
        step = 2 * FANOUT_BATCH
        pipe = self.r.pipeline(transaction=False)
        for i in range(0, len(keys), step):
            self._add_to_built(keys=keys[i:i + step], args=[repr(score), member_, self.size], client=pipe)
        return sum(int(n) for n in pipe.execute())

    def begin_build(self, key: str, marker: str, *, clear: bool) -> None:
        """Start (re)building one sorted set from PostgreSQL: call before reading the rows, then :meth:`merge`.

        The marker goes first so that fan-outs happening while the caller queries PostgreSQL already land in
        this set; the rows read afterwards are merged in, never replacing what those wrote. ``clear`` drops
        the old contents (an operator's full rebuild; the lazy rebuild on read keeps them).
        """
        pipe = self.r.pipeline(transaction=True)
        if clear:
            pipe.delete(key)
        pipe.set(marker, "1")
        pipe.execute()

    def merge(self, key: str, entries: Iterable[tuple[str, float]]) -> int:
        """Add entries to one sorted set and trim it to the newest ``size``."""
        mapping = dict(entries)
        if not mapping:
            return 0
        pipe = self.r.pipeline(transaction=True)
        pipe.zadd(key, mapping)
        pipe.zremrangebyrank(key, 0, -self.size - 1)
        pipe.execute()
        return len(mapping)

    def remove_from_feeds(self, user_ids: Iterable[int], members: Sequence[str | bytes]) -> None:
        if not members:
            return
        pipe = self.r.pipeline(transaction=False)
        for queued, user_id in enumerate(user_ids, start=1):
            pipe.zrem(feed_key(user_id), *members)
            if queued % 5000 == 0:  # bounded buffers for very long follower lists
                pipe.execute()
        pipe.execute()

    def remove_from_keys(self, keys: Iterable[str], members: Sequence[str | bytes]) -> None:
        if not members:
            return
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.zrem(key, *members)
        pipe.execute()

    def remove_from_author(self, author_id: int, members: Sequence[str | bytes]) -> None:
        self.remove_from_keys([author_key(author_id)], members)

    def members(self, user_id: int) -> list[bytes]:
        return list(self.r.zrange(feed_key(user_id), 0, -1))

    # -- reading ---------------------------------------------------------------------------------

    def window(self, keys: Sequence[str], after: Entry | None, count: int) -> list[Entry]:
        """Up to ``count`` entries strictly after ``after`` (None: from the newest), merged over ``keys``
        in feed order and without duplicates. One round trip whatever the number of keys."""
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            if after is None:
                pipe.zrevrangebyscore(key, "+inf", "-inf", start=0, num=count, withscores=True)
            else:
                # Strictly lower scores, plus the (rare) members sharing the cursor's score: Redis can't
                # express "score < s, or score == s and member < m" in one range.
                pipe.zrevrangebyscore(key, f"({after.score!r}", "-inf", start=0, num=count, withscores=True)
                pipe.zrangebyscore(key, repr(after.score), repr(after.score), withscores=True)
        results = pipe.execute()
        seen: set[bytes] = set()
        merged: list[Entry] = []
        for rows in results:
            for m, s in rows:
                entry = Entry(float(s), m)
                if after is not None and not entry < after:
                    continue
                if entry.member not in seen:
                    seen.add(entry.member)
                    merged.append(entry)
        merged.sort(reverse=True)
        return merged[:count]

    def count(self, user_id: int) -> int:
        return int(self.r.zcard(feed_key(user_id)))
