"""Achievement rules: pure functions from facts about an activity to the awards it earns.

Each award carries a ``key`` unique per athlete (the database enforces it), so evaluating the same
activity twice awards nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

DISTANCE_MILESTONES_KM = (100, 500, 1000, 2500, 5000, 10000, 25000)
STREAK_DAYS = (7, 30, 100, 365)


@dataclass(frozen=True)
class Award:
    kind: str
    key: str
    rank: int | None = None
    value: float | None = None
    effort_id: int | None = None
    segment_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EffortFacts:
    effort_id: int
    segment_id: int
    segment_name: str
    elapsed_s: float
    pr_rank: int | None
    athlete_effort_count: int
    kom_rank: int | None
    #: Rank on the athlete's gender board (QOM for women), when on it.
    gender_rank: int | None
    sex: str | None


def segment_awards(efforts: Iterable[EffortFacts]) -> list[Award]:
    awards: list[Award] = []
    for e in efforts:
        base = {"segment_name": e.segment_name, "elapsed_time_s": e.elapsed_s}
        if e.pr_rank is not None and e.pr_rank <= 3 and e.athlete_effort_count >= 2:
            awards.append(Award("pr", f"pr:{e.effort_id}", e.pr_rank, e.elapsed_s, e.effort_id, e.segment_id, base))
        if e.kom_rank == 1:
            awards.append(Award("kom", f"kom:{e.effort_id}", 1, e.elapsed_s, e.effort_id, e.segment_id, base))
        elif e.kom_rank is not None and e.kom_rank <= 10:
            awards.append(Award("top10", f"top10:{e.effort_id}", e.kom_rank, e.elapsed_s, e.effort_id,
                                e.segment_id, base))
        if e.sex == "F" and e.gender_rank == 1 and e.kom_rank != 1:
            awards.append(Award("qom", f"qom:{e.effort_id}", 1, e.elapsed_s, e.effort_id, e.segment_id, base))
    return awards


def best_effort_awards(activity_id: int, best_efforts: Sequence[dict[str, Any]],
                       previous: dict[str, list[float]]) -> list[Award]:
    """Best efforts (400 m … marathon) ranked against the athlete's earlier ones; top 3 earn an award.

    ``previous`` maps a best-effort name to the athlete's times on other activities. A first-ever time
    is not an award: there is nothing to beat yet.
    """
    awards = []
    for be in best_efforts:
        name, elapsed = be.get("name"), be.get("elapsed_time_s")
        if not name or elapsed is None or not previous.get(name):
            continue
        rank = 1 + sum(1 for t in previous[name] if t < elapsed)
        if rank <= 3:
            awards.append(Award("best_effort", f"best:{activity_id}:{name}", rank, float(elapsed),
                                details={"name": name, "distance_m": be.get("distance_m")}))
    return awards


def first_sport_award(sport: str, previous_count: int) -> list[Award]:
    return [Award("first_sport", f"first:{sport}", details={"sport_type": sport})] if previous_count == 0 else []


def milestone_awards(family: str, before_m: float, after_m: float) -> list[Award]:
    return [Award("milestone", f"milestone:{family}:{km}", value=float(km), details={"km": km, "sport": family})
            for km in DISTANCE_MILESTONES_KM if before_m < km * 1000 <= after_m]


def streak_length(days: Iterable[date], ending: date) -> tuple[int, date]:
    """Consecutive days with an activity ending on ``ending``: (length, first day of the streak)."""
    have = set(days)
    length, day = 0, ending
    while day in have:
        length += 1
        day -= timedelta(days=1)
    return length, day + timedelta(days=1)


def streak_awards(days: Iterable[date], ending: date) -> list[Award]:
    length, first = streak_length(days, ending)
    return [Award("streak", f"streak:{n}:{first.isoformat()}", value=float(n), details={"days": n})
            for n in STREAK_DAYS if length >= n]
