from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.leaderboard import BoardEffort, Leaderboards, age_group, elapsed_of, score

T0 = datetime(2026, 11, 18, 7, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture
def boards(redis_clean):
    return Leaderboards(redis_clean)


def eff(effort_id, user, elapsed, start=T0, sex="M", birth=1990):
    return BoardEffort(effort_id, user, elapsed, start, sex, birth)


def test_score_orders_by_time_then_by_earlier_effort():
    assert score(30.0, T0) < score(30.1, T0)
    assert score(30.0, T0) < score(30.0, T0 + timedelta(minutes=5))
    assert elapsed_of(score(37.4, T0)) == pytest.approx(37.4)
    assert score(10 * 24 * 3600.0, T0) < 2 ** 53


def test_best_effort_per_athlete_and_ties_to_the_earlier(boards):
    assert boards.add(1, eff(1, 10, 40.0), TODAY)
    assert not boards.add(1, eff(2, 10, 45.0), TODAY)  # slower: no change
    assert boards.add(1, eff(3, 10, 38.0), TODAY)
    boards.add(1, eff(4, 20, 38.0, start=T0 + timedelta(hours=1)), TODAY)
    boards.add(1, eff(5, 30, 38.0, start=T0 - timedelta(hours=1)), TODAY)
    board = boards.board_key(1, today=TODAY)
    top = boards.top(board, 0, 9)
    assert [(e.user_id, e.effort_id) for e in top] == [(30, 5), (10, 3), (20, 4)]
    assert [e.rank for e in top] == [1, 2, 3]
    assert boards.rank_of(board, 20) == 2 and boards.count(board) == 3


def test_filters_gender_age_and_date_ranges(boards):
    boards.add(1, eff(1, 10, 50.0, sex="F", birth=1995), TODAY)
    boards.add(1, eff(2, 20, 40.0, sex="M", birth=1960), TODAY)
    boards.add(1, eff(3, 30, 45.0, start=datetime(2026, 11, 20, 6, tzinfo=UTC), sex="F", birth=1970), TODAY)
    women = boards.board_key(1, gender="F", today=TODAY)
    assert [e.user_id for e in boards.top(women, 0, 9)] == [30, 10]
    assert [e.user_id for e in boards.top(boards.board_key(1, date_range="today", today=TODAY), 0, 9)] == [30]
    assert boards.count(boards.board_key(1, date_range="this_week", today=TODAY)) == 3
    assert boards.count(boards.board_key(1, date_range="this_year", today=TODAY)) == 3
    assert [e.user_id for e in boards.top(boards.board_key(1, age="25-34", today=TODAY), 0, 9)] == [10]
    women_today = boards.board_key(1, gender="F", date_range="today", today=TODAY)
    assert [(e.user_id, e.effort_id) for e in boards.top(women_today, 0, 9)] == [(30, 3)]
    assert [e.user_id for e in boards.subset(boards.board_key(1, today=TODAY), [10, 30, 99])] == [30, 10]


def test_replace_segment_is_the_same_as_incremental_adds(boards, redis_clean):
    efforts = [eff(i, 100 + i % 7, 30.0 + (i * 7919 % 97) / 10, start=T0 + timedelta(minutes=i),
                   sex="MF"[i % 2], birth=1950 + i % 50) for i in range(60)]
    for e in efforts:
        boards.add(1, e, TODAY)
    incremental = {k: redis_clean.zrange(k, 0, -1, withscores=True) for k in sorted(redis_clean.keys("lb:1:*"))
                   if not k.endswith(b":e") and redis_clean.type(k) == b"zset"}
    redis_clean.flushdb()
    assert boards.replace_segment(1, efforts, TODAY) == 7
    rebuilt = {k: redis_clean.zrange(k, 0, -1, withscores=True) for k in sorted(redis_clean.keys("lb:1:*"))
               if not k.endswith(b":e") and redis_clean.type(k) == b"zset"}
    assert rebuilt == incremental
    assert boards.is_ready(1)


def test_age_groups():
    assert age_group(2000, date(2026, 1, 1)) == "25-34"
    assert age_group(1940, date(2026, 1, 1)) == "75+"
    assert age_group(None, date(2026, 1, 1)) is None


def test_offer_many_is_add_then_rank_for_each_effort_in_turn(boards, redis_clean):
    efforts = [eff(i, 100 + i % 5, 30.0 + (i * 7919 % 37) / 10, start=T0 + timedelta(minutes=i),
                   sex="MF"[i % 5 % 2], birth=1960 + i % 40) for i in range(30)]  # one sex per athlete
    offers = [(1 + i % 3, e) for i, e in enumerate(efforts)]
    # The reference: add() then rank_of() and top() per effort, one by one.
    expected = []
    for segment_id, e in offers:
        boards.add(segment_id, e, TODAY)
        board = boards.board_key(segment_id, today=TODAY)
        rank = boards.rank_of(board, e.user_id)
        best = boards.top(board, rank, rank)[0].effort_id
        women = boards.board_key(segment_id, gender="F", today=TODAY)
        redis_clean.delete(women.zset)  # the filtered view is cached for 30 s: read it fresh each time
        women = boards.board_key(segment_id, gender="F", today=TODAY)
        g_rank = boards.rank_of(women, e.user_id) if e.sex == "F" else None
        g_best = boards.top(women, g_rank, g_rank)[0].effort_id if g_rank is not None else 0
        expected.append(((rank, best), (g_rank, g_best)))
    reference = {k: redis_clean.zrange(k, 0, -1, withscores=True) for k in sorted(redis_clean.keys("lb:*"))
                 if redis_clean.type(k) == b"zset"}
    redis_clean.flushdb()
    got = []
    for i in range(0, len(offers), 7):  # several calls, as several activities would make
        batch = offers[i:i + 7]
        got += [(kom, g if e.sex == "F" else (None, 0)) for (kom, g), (_, e) in
                zip(boards.offer_many(batch, TODAY, rank_on="g:F"), batch, strict=True)]
    assert got == expected
    assert {k: redis_clean.zrange(k, 0, -1, withscores=True) for k in sorted(redis_clean.keys("lb:*"))
            if redis_clean.type(k) == b"zset"} == reference
    assert boards.offer_many([], TODAY) == []
    assert boards.missing([1, 2, 3]) == [1, 2, 3]
    redis_clean.set("lb:2:ready", "1")
    assert boards.missing([1, 2, 3]) == [1, 3] and boards.missing([]) == []
