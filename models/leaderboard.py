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

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

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


#: _UPDATE_BEST on every board of every effort of an activity, in one call. Per effort, ARGV holds: board count n,
#: member, score, effort id, g (1-based board whose rank is also wanted, 0 = none), then n TTLs; KEYS
#: its n (zset, hash) pairs, the first being "all". Returns, per effort, the member's rank and effort id
#: on "all" and on board g (false when absent or not asked): the replies add()/rank_of()/top() give.
_OFFER_MANY = """
local out = {}
local k, a = 1, 1
while a <= #ARGV do
  local n, member, score, effort, g = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  for i = 0, n - 1 do
    local z, h = KEYS[k + 2 * i], KEYS[k + 2 * i + 1]
    local cur = redis.call('ZSCORE', z, member)
    if (not cur) or tonumber(score) < tonumber(cur) then
      redis.call('ZADD', z, score, member)
      redis.call('HSET', h, member, effort)
      local ttl = tonumber(ARGV[a + 5 + i])
      if ttl > 0 then
        redis.call('EXPIRE', z, ttl)
        redis.call('EXPIRE', h, ttl)
      end
    end
  end
  out[#out + 1] = redis.call('ZRANK', KEYS[k], member) or false
  out[#out + 1] = redis.call('HGET', KEYS[k + 1], member) or false
  if g > 0 then
    out[#out + 1] = redis.call('ZRANK', KEYS[k + 2 * (g - 1)], member) or false
    out[#out + 1] = redis.call('HGET', KEYS[k + 2 * (g - 1) + 1], member) or false
  else
    out[#out + 1] = false
    out[#out + 1] = false
  end
  k, a = k + 2 * n, a + 5 + n
end
return out
"""

#: Adds "member score effort_id ..." (space-separated triples) to a staging zset and its effort hash.
#: Lua's unpack() takes a few thousand values at most, hence the inner chunks.
_STAGE_MEMBERS = """
local z, h = {}, {}
for m, s, e in string.gmatch(ARGV[1], "(%S+) (%S+) (%S+)") do
  z[#z + 1] = s
  z[#z + 1] = m
  h[#h + 1] = m
  h[#h + 1] = e
  if #z >= 2000 then
    redis.call('ZADD', KEYS[1], unpack(z))
    redis.call('HSET', KEYS[2], unpack(h))
    z, h = {}, {}
  end
end
if #z > 0 then
  redis.call('ZADD', KEYS[1], unpack(z))
  redis.call('HSET', KEYS[2], unpack(h))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
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


#: (effort id, user id, elapsed seconds, start, sex, birth year): what a rebuild reads per effort.
EffortRow = tuple[int, int, float, datetime, str | None, int | None]
#: Members per ZADD / HSET while staging a rebuilt board, and how long an abandoned stage lives.
_STAGE_CHUNK = 10_000
_STAGE_TTL = 3600


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
        return [*_athlete_suffixes(self.sex, age_group(self.birth_year, self.start.date())),
                *_current_periods(self.start.astimezone(UTC).date(), today)]


def _athlete_suffixes(sex: str | None, group: str | None) -> list[tuple[str, int]]:
    """The boards every effort of an athlete of this sex and age group is on."""
    out: list[tuple[str, int]] = [("all", 0)]
    if sex in GENDERS:
        out.append((f"g:{sex}", 0))
    if group:
        out.append((f"a:{group}", 0))
    return out


def _current_periods(day: date, today: date) -> list[tuple[str, int]]:
    """The period boards of an effort on ``day`` (UTC): only the current periods are ever asked for."""
    current = period_keys(today)
    return [(suffix, _TTL[kind]) for kind, suffix in period_keys(day).items() if suffix == current[kind]]


def _best_per_board(rows: Iterable[EffortRow], today: date) -> dict[tuple[str, int], dict[int, tuple[float, int]]]:
    """Per (board suffix, TTL): each athlete's best (score, effort id); the first seen wins a tie.

    The boards of an effort are :meth:`BoardEffort.suffixes`, worked out from its parts (age group per
    birth year and year, periods per UTC day), each part once: millions of efforts share a few hundred.
    """
    best: dict[tuple[str, int], dict[int, tuple[float, int]]] = {}
    groups: dict[tuple[int | None, int], str | None] = {}
    periods: dict[date, tuple[tuple[str, int], ...]] = {}
    boards_of: dict[tuple[Any, ...], list[dict[int, tuple[float, int]]]] = {}
    for effort_id, user_id, elapsed_s, start, sex, birth_year in rows:
        value = score(elapsed_s, start)
        by_year = (birth_year, start.year)  # age_group reads only the year of start.date()
        if by_year not in groups:
            groups[by_year] = age_group(birth_year, start.date())
        day = start.astimezone(UTC).date()
        in_periods = periods.get(day)
        if in_periods is None:
            in_periods = periods[day] = tuple(_current_periods(day, today))
        which = (sex, groups[by_year], in_periods)
        boards = boards_of.get(which)
        if boards is None:
            boards = boards_of[which] = [best.setdefault(s, {})
                                         for s in [*_athlete_suffixes(sex, which[1]), *in_periods]]
        for board in boards:
            current = board.get(user_id)
            if current is None or value < current[0]:
                board[user_id] = (value, effort_id)
    return best


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
        self._stage = client.register_script(_STAGE_MEMBERS)
        self._offer_many = client.register_script(_OFFER_MANY)

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

    def missing(self, segment_ids: Sequence[int]) -> list[int]:
        """The segments (of ``segment_ids``) whose ``ready`` marker is missing, in one command."""
        if not segment_ids:
            return []
        markers = self.r.mget([key(s, "ready") for s in segment_ids])
        return [s for s, ready in zip(segment_ids, markers, strict=True) if ready is None]

    def offer_many(self, offers: Sequence[tuple[int, BoardEffort]], today: date | None = None,
                   rank_on: str | None = None) -> list[tuple[tuple[int | None, int], tuple[int | None, int]]]:
        """:meth:`add` for each (segment, effort) in turn, then per effort, in order, the athlete's 0-based
        rank and the id of the effort holding it on the segment's overall board and on board ``rank_on``
        (a suffix such as ``"g:F"``; ``(None, 0)`` when the effort is not on such a board or none is asked).

        One atomic call for all of an activity's efforts: each sees the offers before it, and no other
        client's offer lands in between. A stored board such as ``g:F`` holds the same scores as the
        filtered view ``board_key(gender="F")`` reads (every offer and rebuild writes all of an effort's
        boards alike), so its ranks are that view's.
        """
        if not offers:
            return []
        today = today or datetime.now(UTC).date()
        keys: list[str] = []
        args: list[Any] = []
        for segment_id, effort in offers:
            suffixes = effort.suffixes(today)  # "all" first
            names = [name for name, _ in suffixes]
            keys += [k for name in names for k in (key(segment_id, name), key(segment_id, name) + ":e")]
            args += [len(suffixes), effort.user_id, score(effort.elapsed_s, effort.start), effort.effort_id,
                     names.index(rank_on) + 1 if rank_on in names else 0, *(ttl for _, ttl in suffixes)]
        replies = self._offer_many(keys=keys, args=args)

        def pair(rank: Any, best: Any) -> tuple[int | None, int]:
            return (None, 0) if rank is None else (int(rank), int(best) if best is not None else 0)

        return [(pair(replies[i], replies[i + 1]), pair(replies[i + 2], replies[i + 3]))
                for i in range(0, len(replies), 4)]

    def replace_segment(self, segment_id: int, efforts: Iterable[BoardEffort], today: date | None = None) -> int:
        """Atomically replace all of a segment's boards with those built from ``efforts``."""
        return self.replace_segment_rows(
            segment_id, ((e.effort_id, e.user_id, e.elapsed_s, e.start, e.sex, e.birth_year) for e in efforts),
            today)

    def replace_segment_rows(self, segment_id: int, rows: Iterable[EffortRow], today: date | None = None, *,
                             run: Callable[..., Any] | None = None) -> int:
        """:meth:`replace_segment` from plain (effort id, user id, elapsed s, start, sex, birth year) rows.

        Built for boards of millions: each athlete's best per board is reduced in one pass (the boards an
        effort belongs on depend only on the athlete's sex and birth year and the effort's day, so they are
        worked out once per distinct combination), the new boards are written in chunks under staging keys
        (no single command or transaction holds Redis for long), and one short transaction then swaps
        them in: readers see the old boards or the new ones, never a mix.
        """
        today = today or datetime.now(UTC).date()
        # ``run`` calls the CPU-bound reduction elsewhere (a web request hands it to a thread, off its event loop).
        best = run(_best_per_board, rows, today) if run is not None else _best_per_board(rows, today)
        token = uuid.uuid4().hex[:12]
        staged: list[tuple[str, str, int]] = []
        pipe = self.r.pipeline(transaction=False)
        for (suffix, ttl), members in best.items():
            board = key(segment_id, suffix)
            stage = f"lbstage:{token}:{board}"
            items = list(members.items())
            for i in range(0, len(items), _STAGE_CHUNK):
                # One string per chunk, split by the script: packing millions of separate arguments
                # costs the client far more than building the boards does. Scores go as repr(), as the
                # client library sends floats, so Redis parses exactly the same doubles.
                payload = " ".join([f"{uid} {v[0]!r} {v[1]}" for uid, v in items[i:i + _STAGE_CHUNK]])
                self._stage(keys=[stage, stage + ":e"], args=[payload, _STAGE_TTL], client=pipe)
                if len(pipe) >= 8:
                    pipe.execute()
            staged.append((board, stage, ttl))
        pipe.execute()
        swap = self.r.pipeline(transaction=True)
        swap.unlink(*self._all_keys(segment_id, today))  # freed in the background, not inside EXEC
        for board, stage, ttl in staged:
            for suffix in ("", ":e"):
                swap.rename(stage + suffix, board + suffix)
                if ttl:
                    swap.expire(board + suffix, ttl)
                else:
                    swap.persist(board + suffix)
        swap.set(key(segment_id, "ready"), "1")
        swap.execute()
        return len(best.get(("all", 0), {}))

    def diff_segment_rows(self, segment_id: int, rows: Iterable[EffortRow], today: date | None = None) -> list[str]:
        """How a segment's stored boards differ from the ones ``rows`` (PostgreSQL's truth) would build: one
        line per board whose members, scores or effort ids disagree. Empty when they agree, or when the boards
        are not built (reads rebuild those first, so that is not an inconsistency)."""
        if not self.is_ready(segment_id):
            return []
        today = today or datetime.now(UTC).date()
        problems = []
        for (suffix, _ttl), members in _best_per_board(rows, today).items():
            board = key(segment_id, suffix)
            pairs = cast(list[tuple[bytes, float]], self.r.zrange(board, 0, -1, withscores=True))
            stored = {int(m): float(s) for m, s in pairs}
            efforts = {int(m): int(e) for m, e in cast(dict[bytes, bytes], self.r.hgetall(board + ":e")).items()}
            want = {uid: v[0] for uid, v in members.items()}
            want_efforts = {uid: v[1] for uid, v in members.items()}
            if stored.keys() != want.keys() or any(abs(stored[u] - want[u]) > 1e-6 for u in want) \
                    or any(efforts.get(u) != want_efforts[u] for u in want):
                problems.append(f"{board}: {len(stored)} athletes stored, {len(want)} expected")
        return problems

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
        # redis-py types the reply for every flag combination; withscores gives (member, score) pairs.
        rows = cast(list[tuple[Any, float]], self.r.zrange(board.zset, start, stop, withscores=True))
        return self._entries(board, rows, start)

    def rank_of(self, board: Board, user_id: int) -> int | None:
        """0-based rank of the athlete on the board, or None when absent."""
        # Without withscore the reply is the rank or None (redis-py's type also covers withscore's list).
        rank = cast(int | None, self.r.zrank(board.zset, str(user_id)))
        return None if rank is None else int(rank)

    def count(self, board: Board) -> int:
        return int(self.r.zcard(board.zset))

    def subset(self, board: Board, user_ids: Sequence[int]) -> list[Entry]:
        """The board restricted to ``user_ids`` (e.g. the athletes one follows), ranked among themselves."""
        if not user_ids:
            return []
        # Scores and effort ids together, in one round trip (ids of athletes not on the board are dropped).
        members = [str(u) for u in user_ids]
        pipe = self.r.pipeline(transaction=False)
        pipe.zmscore(board.zset, members)
        pipe.hmget(board.efforts, members)
        scores, effort_ids = pipe.execute()
        rows = sorted(((m.encode(), s, e) for m, s, e in zip(members, scores, effort_ids, strict=True)
                       if s is not None), key=lambda r: (r[1], r[0]))
        return [Entry(rank=i + 1, user_id=int(m), elapsed_time_s=elapsed_of(s),
                      effort_id=int(e) if e is not None else 0) for i, (m, s, e) in enumerate(rows)]

    def _entries(self, board: Board, rows: list[tuple[Any, float]], first_rank: int) -> list[Entry]:
        if not rows:
            return []
        effort_ids = self.r.hmget(board.efforts, [m for m, _ in rows])
        return [Entry(rank=first_rank + i + 1, user_id=int(m), elapsed_time_s=elapsed_of(s),
                      effort_id=int(e) if e is not None else 0)
                for i, ((m, s), e) in enumerate(zip(rows, effort_ids, strict=True))]
