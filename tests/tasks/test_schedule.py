"""A beat job runs at most once per period even when beat sends it twice (a restart with a stale schedule
file, two beats) and Redis lost its locks: PostgreSQL's ledger decides (domain.schedule)."""

from __future__ import annotations

from sqlalchemy import text

from models import db


def runs() -> int:
    db.session.remove()
    return int(db.session.scalar(text("SELECT count(*) FROM beat_runs WHERE job = 'heartbeat'")))


def test_a_second_send_in_the_same_period_is_refused_by_the_ledger(celery_worker, committed, redis_clean):
    from tasks.maintenance import heartbeat

    assert heartbeat.apply_async(ignore_result=False).get(timeout=30) is not None
    assert runs() == 1
    redis_clean.flushdb()  # Redis lost everything, its locks included
    assert heartbeat.apply_async(ignore_result=False).get(timeout=30) is None  # beat sent it again: refused
    assert runs() == 1
    # Half a period (30 s of the heartbeat's 60 s) later the next run goes ahead.
    db.session.execute(text("UPDATE beat_runs SET started_at = started_at - interval '31 seconds'"))
    db.session.commit()
    assert heartbeat.apply_async(ignore_result=False).get(timeout=30) is not None
    assert runs() == 2


def test_called_outside_the_schedule_it_always_runs(app, committed, redis_clean):
    from tasks.maintenance import heartbeat

    with app.app_context():
        assert heartbeat() is not None
        assert heartbeat() is not None  # an operator's direct call: no period to hold it to
    assert runs() == 2
