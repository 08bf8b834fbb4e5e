"""Privacy-zone changes and the athlete's ``privacy_version`` (what marks stored non-owner views stale)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from models import User, db
from tests.support.social import make_activity
from webapp.privacy_zones.resources import privacy_changed


def test_concurrent_zone_changes_each_bump_the_privacy_version(app: Flask, committed: None) -> None:
    """Two changes whose requests both read version 0 before either commits must leave it at 2: with a
    read-modify-write the second would write 1 again, and views recomputed after the first change would
    pass for current under the second."""
    with app.app_context():
        user = User(firebase_uid="zone-race", display_name="Racer")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
        db.session.remove()

    both_read = threading.Barrier(2, timeout=10)
    first_done = threading.Event()
    errors: list[BaseException] = []

    def change(first: bool) -> None:
        try:
            with app.app_context():
                athlete = db.session.get(User, user_id)
                assert athlete is not None and athlete.privacy_version == 0
                both_read.wait()
                if not first:
                    assert first_done.wait(10)
                privacy_changed(athlete)
                if first:
                    first_done.set()
                db.session.remove()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
            first_done.set()

    threads = [threading.Thread(target=change, args=(first,)) for first in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    with app.app_context():
        fresh: Any = db.session.get(User, user_id)
        assert fresh.privacy_version == 2
        db.session.remove()


def test_sweeper_resends_the_refresh_for_athletes_with_stale_views(app: Flask, client: Any, login: Any,
                                                                   db_tx: sa.Connection,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh whose message was lost (or zones redrawn by a migration, which can't send one) is re-sent."""
    from domain import jobs
    from tasks.maintenance import sweep_privacy

    ann, _ = login("ann")
    bob, _ = login("bob")
    make_activity(client, ann)
    make_activity(client, bob)
    sent: list[tuple[Any, ...]] = []

    def record(name: str, *args: Any, **_: Any) -> bool:
        sent.append((name, *args))
        return True

    monkeypatch.setattr(jobs, "send", record)
    ann_id = client.get("/api/v1/me", headers=ann).json["id"]
    db_tx.execute(sa.text("UPDATE users SET privacy_version = privacy_version + 1 WHERE id = :id"), {"id": ann_id})
    assert sweep_privacy() == 1
    assert sent == [(jobs.PRIVACY_REFRESH, ann_id)]
