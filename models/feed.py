"""Home feeds in Redis sorted sets: a cache of PostgreSQL truth, rebuilt from it whenever it is missing.

Keys:

* ``feed:<user>`` — the athlete's home feed: members ``a:<activity id>`` / ``p:<post id>``, scored by the
  activity's start time / the post's creation time in epoch seconds, holding the newest :data:`FEED_SIZE`.
  The fan-out trims lazily (see :data:`TRIM_EVERY`), so a set may hold some older entries more for a
  while; every read trims the viewer's set first, so nobody is ever shown more than the newest FEED_SIZE.
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
from typing import cast
from zlib import crc32

import redis

FEED_SIZE = 1000
#: Followers written per Lua call: keeps each call short so other clients are not held up behind it.
FANOUT_BATCH = 1000
#: A fan-out trims a follower's feed in one write out of about this many (which ones: a hash of the item
#: and the user id, so it is spread evenly and needs no randomness inside the script). Trimming on every
#: write (ZCARD, and ZREMRANGEBYRANK whenever the feed is full) cost more Redis time than the ZADD itself;
#: this way a feed holds on average TRIM_EVERY / 2 entries beyond FEED_SIZE (rarely a few times more), and
#: reads trim before they look.
TRIM_EVERY = 32
FEED_PREFIX = "feed:"
BUILT_PREFIX = "feed:built:"
AUTHOR_PREFIX = "feed:author:"
AUTHOR_BUILT_PREFIX = "feed:author:built:"

# ARGV: score, member, cap, comma-separated user ids, key prefix, marker prefix, trim slot, trim period.
# Adds the member to each built set; trims the sets whose id falls on the item's slot (every set when the
# period is 1). The ids travel as one string and the key names are made here: packing 20,000 separate key
# arguments costs the client far more than the whole fan-out costs Redis. Per follower that is one EXISTS
# and one ZADD, which is what the fan-out's time is made of. (Keys not declared in KEYS are fine on one
# Redis server, not on a cluster.)
_ADD_TO_BUILT = """
local score, member, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local prefix, marker = ARGV[5], ARGV[6]
local slot, period = tonumber(ARGV[7]), tonumber(ARGV[8])
local call = redis.call
local written = 0
for id in string.gmatch(ARGV[4], '%d+') do
  if call('EXISTS', marker .. id) == 1 then
    local key = prefix .. id
    call('ZADD', key, score, member)
    if (tonumber(id) + slot) % period == 0 then
      call('ZREMRANGEBYRANK', key, 0, -cap - 1)
    end
    written = written + 1
  end
end
return written
"""

# ARGV: comma-separated user ids, key prefix, members... Removes the members from each set.
_REMOVE = """
local removed = 0
for id in string.gmatch(ARGV[1], '%d+') do
  removed = removed + redis.call('ZREM', ARGV[2] .. id, unpack(ARGV, 3))
end
return removed
"""


def id_batches(user_ids: Iterable[int], size: int = FANOUT_BATCH) -> list[str]:
    """User ids as the comma-separated strings the scripts take, ``size`` per string."""
    ids = [str(u) for u in user_ids]
    return [",".join(ids[i:i + size]) for i in range(0, len(ids), size)]


def feed_key(user_id: int) -> str:
    return f"{FEED_PREFIX}{user_id}"


def built_key(user_id: int) -> str:
    return f"{BUILT_PREFIX}{user_id}"


def author_key(user_id: int) -> str:
    return f"{AUTHOR_PREFIX}{user_id}"


def author_built_key(user_id: int) -> str:
    return f"{AUTHOR_BUILT_PREFIX}{user_id}"


def member(kind: str, item_id: int) -> str:
    """``a:<id>`` for an activity, ``p:<id>`` for a post."""
    if kind not in ("activity", "post"):
        raise ValueError(f"unknown feed item kind {kind!r}")
    return f"{kind[0]}:{item_id}"


def parse_member(value: str | bytes) -> tuple[str, int]:
    text = value.decode() if isinstance(value, bytes) else value
    prefix, _, ident = text.partition(":")
    return ("activity" if prefix == "a" else "post"), int(ident)


def trim_slot(member_: str, period: int) -> int:
    """Which followers' feeds a fan-out of ``member_`` trims: those whose id + slot is a multiple of
    ``period``. A hash, so that over the items reaching one feed the trims fall about every ``period``
    writes whatever the ids."""
    return crc32(member_.encode()) % period


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
    def __init__(self, client: redis.Redis, size: int = FEED_SIZE, trim_every: int = TRIM_EVERY) -> None:
        self.r = client
        self.size = size
        self.trim_every = trim_every
        self._add_to_built = client.register_script(_ADD_TO_BUILT)
        self._remove = client.register_script(_REMOVE)

    # -- markers ---------------------------------------------------------------------------------

    def is_built(self, user_id: int) -> bool:
        return bool(self.r.exists(built_key(user_id)))

    def markers(self, user_id: int, author_ids: Sequence[int]) -> tuple[bool, list[bool]]:
        """(is the user's feed built, is each author's shared set built), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.exists(built_key(user_id))
        for author_id in author_ids:
            pipe.exists(author_built_key(author_id))
        found = [bool(v) for v in pipe.execute()]
        return found[0], found[1:]

    # -- writing ---------------------------------------------------------------------------------

    def add_to_feeds(self, user_ids: Iterable[int], member_: str, score: float) -> int:
        """Add one item to the feeds of ``user_ids`` that are built; returns how many were written."""
        return self.add_to_feed_batches(id_batches(user_ids), member_, score)

    def add_to_feed_batches(self, batches: Iterable[str], member_: str, score: float) -> int:
        """:meth:`add_to_feeds` for ids already joined by commas (``tasks.feed`` has PostgreSQL do it)."""
        return self._add(batches, member_, score, FEED_PREFIX, BUILT_PREFIX)

    def add_to_author(self, author_id: int, member_: str, score: float) -> int:
        """One set, read by many: trimmed exactly on every write (reads do not trim the shared sets)."""
        return self._add([str(author_id)], member_, score, AUTHOR_PREFIX, AUTHOR_BUILT_PREFIX, trim_every=1)

    def _add(self, batches: Iterable[str], member_: str, score: float, prefix: str, marker_prefix: str,
             *, trim_every: int | None = None) -> int:
        period = trim_every or self.trim_every
        slot = trim_slot(member_, period)
        pipe = self.r.pipeline(transaction=False)
        for batch in batches:
            self._add_to_built(args=[repr(score), member_, self.size, batch, prefix, marker_prefix, slot, period],
                               client=pipe)
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

    def remove_from_feeds(self, user_ids: Iterable[int], members: Sequence[str | bytes]) -> int:
        return self.remove_from_feed_batches(id_batches(user_ids), members)

    def remove_from_feed_batches(self, batches: Iterable[str], members: Sequence[str | bytes]) -> int:
        if not members:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for batch in batches:
            self._remove(args=[batch, FEED_PREFIX, *members], client=pipe)
        return sum(int(n) for n in pipe.execute())

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
        # redis-py types the reply for every flag combination; plain members of a bytes client are bytes.
        return cast(list[bytes], self.r.zrange(feed_key(user_id), 0, -1))

    # -- reading ---------------------------------------------------------------------------------

    def window(self, keys: Sequence[str], after: Entry | None, count: int) -> list[Entry]:
        """Up to ``count`` entries strictly after ``after`` (None: from the newest), merged over ``keys``
        in feed order and without duplicates. One round trip whatever the number of keys."""
        return self.checked_window(keys, after, count)[1]

    def checked_window(self, keys: Sequence[str], after: Entry | None, count: int, *,
                       markers: Sequence[str] = (), trim: Sequence[str] = ()) -> tuple[list[bool], list[Entry]]:
        """:meth:`window`, in the same round trip first checking that ``markers`` exist (returned in order)
        and trimming the ``trim`` sets to the newest ``size`` (fan-outs trim lazily; this keeps a reader
        from ever seeing more). When a marker is missing the caller rebuilds and asks again."""
        pipe = self.r.pipeline(transaction=False)
        for marker in markers:
            pipe.exists(marker)
        for key in trim:
            pipe.zremrangebyrank(key, 0, -self.size - 1)
        for key in keys:
            if after is None:
                pipe.zrevrangebyscore(key, "+inf", "-inf", start=0, num=count, withscores=True)
            else:
                # Strictly lower scores, plus the (rare) members sharing the cursor's score: Redis can't
                # express "score < s, or score == s and member < m" in one range.
                pipe.zrevrangebyscore(key, f"({after.score!r}", "-inf", start=0, num=count, withscores=True)
                pipe.zrangebyscore(key, repr(after.score), repr(after.score), withscores=True)
        results = pipe.execute()
        found = [bool(v) for v in results[:len(markers)]]
        seen: set[bytes] = set()
        merged: list[Entry] = []
        for rows in results[len(markers) + len(trim):]:
            for m, s in rows:
                entry = Entry(float(s), m)
                if after is not None and not entry < after:
                    continue
                if entry.member not in seen:
                    seen.add(entry.member)
                    merged.append(entry)
        merged.sort(reverse=True)
        return found, merged[:count]

    def count(self, user_id: int) -> int:
        return int(self.r.zcard(feed_key(user_id)))
