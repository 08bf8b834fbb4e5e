from __future__ import annotations

from datetime import date, timedelta

from domain.algorithms import achievements as rules


def facts(**kw):
    base = dict(effort_id=1, segment_id=2, segment_name="Hill", elapsed_s=60.0, pr_rank=1, athlete_effort_count=2,
                kom_rank=None, gender_rank=None, sex="M")
    base.update(kw)
    return rules.EffortFacts(**base)


def test_segment_awards():
    assert [a.kind for a in rules.segment_awards([facts()])] == ["pr"]
    assert rules.segment_awards([facts(athlete_effort_count=1)]) == []  # a first effort beats nobody
    assert [a.kind for a in rules.segment_awards([facts(kom_rank=1)])] == ["pr", "kom"]
    top = rules.segment_awards([facts(pr_rank=None, kom_rank=4)])
    assert [(a.kind, a.rank) for a in top] == [("top10", 4)]
    assert rules.segment_awards([facts(pr_rank=None, kom_rank=11)]) == []
    qom = rules.segment_awards([facts(pr_rank=None, kom_rank=3, gender_rank=1, sex="F")])
    assert {a.kind for a in qom} == {"top10", "qom"}
    keys = [a.key for a in rules.segment_awards([facts(kom_rank=1)])]
    assert len(keys) == len(set(keys))


def test_best_effort_awards_rank_against_previous_times():
    best = [{"name": "5k", "elapsed_time_s": 1500.0, "distance_m": 5000}, {"name": "1k", "elapsed_time_s": 290.0}]
    awards = rules.best_effort_awards(9, best, {"5k": [1400.0, 1600.0], "1k": [280.0, 281.0, 282.0]})
    assert [(a.details["name"], a.rank) for a in awards] == [("5k", 2)]
    assert rules.best_effort_awards(9, best, {}) == []


def test_first_sport_milestones_and_streaks():
    assert rules.first_sport_award("running", 0)[0].key == "first:running"
    assert rules.first_sport_award("running", 3) == []
    ms = rules.milestone_awards("running", 95_000, 510_000)
    assert [a.value for a in ms] == [100.0, 500.0]
    assert rules.milestone_awards("running", 100_000, 120_000) == []
    end = date(2026, 11, 20)
    days = [end - timedelta(days=i) for i in range(8)]
    length, first = rules.streak_length(days, end)
    assert (length, first) == (8, end - timedelta(days=7))
    assert [a.key for a in rules.streak_awards(days, end)] == [f"streak:7:{first.isoformat()}"]
    assert rules.streak_awards(days[:3], end) == []
