"""Segment leaderboards in Redis sorted sets: each athlete's best eligible effort per board.

A cache of PostgreSQL truth (segment_efforts): :func:`rebuild_segment` recreates a segment's boards from
the database, and every read or write that finds a segment's ``ready`` marker missing (Redis restarted,
FLUSHALL, eviction) rebuilds it first, so boards come back identical without anyone running a command.

Boards per segment: ``all``; by gender (``g:M``…); by age group at the time of the effort (``a:25-34``…);
and for the current ``y``ear, ``m``onth, ISO ``w``eek and ``d``ay (UTC), which expire on their own after
their period. Members are athlete ids; a companion hash maps each to the effort id.

Scores order by elapsed time at 0.1 s and then by start time (minutes since 2000), so a tie goes to the
earlier effort; both fit exactly in a double (27 + 26 bits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import redis

EPOCH_2000 = 946_684_800
MINUTE_BITS = 26
MAX_MINUTES = (1 << MINUTE_BITS) - 1
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("0-19", 0, 19), ("20-24", 20, 24), ("25-34", 25, 34), ("35-44", 35, 44), ("45-54", 45, 54),
    ("55-64", 55, 64), ("65-69", 65, 69), ("70-74", 70, 74), ("75+", 75, 200),
)
GENDERS = ("M", "F", "X")
DATE_RANGES = ("today", "this_week", "this_month", "this_year")
_TTL = {"d": 3 * 86400, "w": 15 * 86400, "m": 40 * 86400, "y": 400 * 86400}

_UPDATE_BEST = """
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not cur) or tonumber(ARGV[2]) < tonumber(cur) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  local ttl = tonumber(ARGV[4])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[2], ttl)
  end
  return 1
end
return 0
"""


def score(elapsed_s: float, start: datetime) -> float:
    deciseconds = round(elapsed_s * 10)
    minutes = min(MAX_MINUTES, max(0, int((start.timestamp() - EPOCH_2000) // 60)))
    return float((deciseconds << MINUTE_BITS) + minutes)


def elapsed_of(score_value: float) -> float:
    return (int(score_value) >> MINUTE_BITS) / 10.0


def age_group(birth_year: int | None, on: date) -> str | None:
    if not birth_year:
        return None
    age = on.year - birth_year
    return next((name for name, lo, hi in AGE_GROUPS if lo <= age <= hi), None)


def period_keys(day: date) -> dict[str, str]:
    iso = day.isocalendar()
    return {"y": f"y:{day.year}", "m": f"m:{day.year}-{day.month:02d}", "w": f"w:{iso.year}-W{iso.week:02d}",
            "d": f"d:{day.isoformat()}"}


def range_suffix(date_range: str, today: date) -> str:
    return period_keys(today)[{"today": "d", "this_week": "w", "this_month": "m", "this_year": "y"}[date_range]]


def key(segment_id: int, suffix: str) -> str:
    return f"lb:{segment_id}:{suffix}"


@dataclass(frozen=True)
class BoardEffort:
    """An eligible effort as the boards need it."""

    effort_id: int
    user_id: int
    elapsed_s: float
    start: datetime
    sex: str | None
    birth_year: int | None

    def suffixes(self, today: date) -> list[tuple[str, int]]:
        """Board suffixes this effort belongs on (with their TTL; 0 = none)."""
        out: list[tuple[str, int]] = [("all", 0)]
        if self.sex in GENDERS:
            out.append((f"g:{self.sex}", 0))
        group = age_group(self.birth_year, self.start.date())
        if group:
            out.append((f"a:{group}", 0))
        current = period_keys(today)
        for kind, suffix in period_keys(self.start.astimezone(UTC).date()).items():
            if suffix == current[kind]:  # only the current periods are ever asked for
                out.append((suffix, _TTL[kind]))
        return out


@dataclass(frozen=True)
class Board:
    """A sorted set to read and the hash naming each member's effort."""

    zset: str
    efforts: str


@dataclass
class Entry:
    rank: int
    user_id: int
    elapsed_time_s: float
    effort_id: int


class Leaderboards:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._update = client.register_script(_UPDATE_BEST)

    # -- writing ---------------------------------------------------------------------------------

    def is_ready(self, segment_id: int) -> bool:
        return bool(self.r.exists(key(segment_id, "ready")))

    def add(self, segment_id: int, effort: BoardEffort, today: date | None = None) -> bool:
        """Offer an effort to the segment's boards; True when it improved the athlete's overall best."""
        today = today or datetime.now(UTC).date()
        value = score(effort.elapsed_s, effort.start)
        pipe = self.r.pipeline(transaction=False)
        for suffix, ttl in effort.suffixes(today):
            board = key(segment_id, suffix)
            self._update(keys=[board, board + ":e"], args=[effort.user_id, value, effort.effort_id, ttl], client=pipe)
        return bool(pipe.execute()[0])

    def replace_segment(self, segment_id: int, efforts: Iterable[BoardEffort], today: date | None = None) -> int:
        """Atomically replace all of a segment's boards with those built from ``efforts``."""
        today = today or datetime.now(UTC).date()
        best: dict[str, dict[int, tuple[float, int, int]]] = {}
        for effort in efforts:
            value = score(effort.elapsed_s, effort.start)
            for suffix, ttl in effort.suffixes(today):
                board = best.setdefault(suffix, {})
                current = board.get(effort.user_id)
                if current is None or value < current[0]:
                    board[effort.user_id] = (value, effort.effort_id, ttl)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*self._all_keys(segment_id, today))
        for suffix, members in best.items():
            board = key(segment_id, suffix)
            pipe.zadd(board, {str(uid): v[0] for uid, v in members.items()})
            pipe.hset(board + ":e", mapping={str(uid): v[1] for uid, v in members.items()})
            ttl = next(iter(members.values()))[2]
            if ttl:
                pipe.expire(board, ttl)
                pipe.expire(board + ":e", ttl)
        pipe.set(key(segment_id, "ready"), "1")
        pipe.execute()
        return len(best.get("all", {}))

    def _all_keys(self, segment_id: int, today: date) -> list[str]:
        suffixes = ["all", *(f"g:{g}" for g in GENDERS), *(f"a:{a[0]}" for a in AGE_GROUPS),
                    *period_keys(today).values()]
        keys = [key(segment_id, s) for s in suffixes]
        return [*keys, *(k + ":e" for k in keys), key(segment_id, "ready")]

    def drop_segment(self, segment_id: int) -> None:
        self.r.delete(*self._all_keys(segment_id, datetime.now(UTC).date()))

    # -- reading ---------------------------------------------------------------------------------

    def board_key(self, segment_id: int, *, gender: str | None = None, age: str | None = None,
                  date_range: str | None = None, today: date | None = None) -> Board:
        """The sorted set answering these filters: a stored board, or an intersection cached briefly."""
        today = today or datetime.now(UTC).date()
        base = key(segment_id, range_suffix(date_range, today)) if date_range else key(segment_id, "all")
        masks = [key(segment_id, f"g:{gender}")] if gender else []
        if age:
            masks.append(key(segment_id, f"a:{age}"))
        if not masks:
            return Board(base, base + ":e")
        tmp = f"lbtmp:{base}|{gender or ''}|{age or ''}"
        if not self.r.exists(tmp):
            # Weight 0 for the masks: the score stays the base board's (the athlete's best in range).
            pipe = self.r.pipeline(transaction=True)
            pipe.zinterstore(tmp, {base: 1, **{m: 0 for m in masks}}, aggregate="SUM")
            pipe.expire(tmp, 30)
            pipe.execute()
        return Board(tmp, base + ":e")

    def top(self, board: Board, start: int, stop: int) -> list[Entry]:
        rows = self.r.zrange(board.zset, start, stop, withscores=True)
        return self._entries(board, rows, start)

    def rank_of(self, board: Board, user_id: int) -> int | None:
        """0-based rank of the athlete on the board, or None when absent."""
        rank = self.r.zrank(board.zset, str(user_id))
        return None if rank is None else int(rank)

    def count(self, board: Board) -> int:
        return int(self.r.zcard(board.zset))

    def subset(self, board: Board, user_ids: Sequence[int]) -> list[Entry]:
        """The board restricted to ``user_ids`` (e.g. the athletes one follows), ranked among themselves."""
        if not user_ids:
            return []
        scores = self.r.zmscore(board.zset, [str(u) for u in user_ids])
        rows = sorted(((str(u).encode(), s) for u, s in zip(user_ids, scores, strict=True) if s is not None),
                      key=lambda r: (r[1], r[0]))
        return self._entries(board, rows, 0)

    def _entries(self, board: Board, rows: list[tuple[Any, float]], first_rank: int) -> list[Entry]:
        if not rows:
            return []
        effort_ids = self.r.hmget(board.efforts, [m for m, _ in rows])
        return [Entry(rank=first_rank + i + 1, user_id=int(m), elapsed_time_s=elapsed_of(s),
                      effort_id=int(e) if e is not None else 0)
                for i, ((m, s), e) in enumerate(zip(rows, effort_ids, strict=True))]
