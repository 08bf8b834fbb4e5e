"""At most one run of a periodic job per period, decided by PostgreSQL (models.beat).

Beat persists its schedule to a file it syncs every few minutes, so a beat killed and restarted may send a
job that already ran this period; two beats (a deploy overlap) send everything twice; and the Redis lock of
tasks.locks is gone when Redis loses its data. The ledger answers for all three: a run starts only if the
previous one of that job started at least ``min_gap_s`` ago. Half the job's interval, so a run that beat sends
a little early or late still counts, while a second send of the same period is refused.
"""

from __future__ import annotations

from sqlalchemy import text

from models import db
from models.db import rowcount

#: Runs are kept this long (the chaos check and an operator's "when did the sweeper last run?" read them).
KEEP_DAYS = 7


def claim_run(job: str, min_gap_s: float) -> bool:
    """Record a run of ``job`` and return True, unless one started less than ``min_gap_s`` ago (False)."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('beat:' || :job))"), {"job": job})
    recent = db.session.scalar(text(
        "SELECT 1 FROM beat_runs WHERE job = :job AND started_at > now() - make_interval(secs => :gap) LIMIT 1"),
        {"job": job, "gap": float(min_gap_s)})
    if recent:
        db.session.rollback()
        return False
    db.session.execute(text("INSERT INTO beat_runs (job) VALUES (:job)"), {"job": job})
    db.session.commit()  # also releases the advisory lock
    return True


def prune_runs() -> int:
    result = db.session.execute(text("DELETE FROM beat_runs WHERE started_at < now() - make_interval(days => :d)"),
                                {"d": KEEP_DAYS})
    db.session.commit()
    return rowcount(result)
