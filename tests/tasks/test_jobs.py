"""The domain names background jobs; the tasks layer must provide every one of them, under the same name."""

from __future__ import annotations

from typing import Any

import pytest

from domain import jobs

JOB_NAMES = sorted(value for name, value in vars(jobs).items() if name.isupper() and isinstance(value, str))


def test_every_job_the_domain_names_has_a_sender_and_a_task(app):
    celery = app.extensions["celery"]
    assert JOB_NAMES, "domain.jobs names no job"
    for name in JOB_NAMES:
        assert name in jobs._senders, f"no sender registered for {name}"
        if name not in (jobs.INGEST_UPLOAD, jobs.UPLOAD_AFTER_INGEST):  # canvases of stages, not one task
            assert name in celery.tasks, f"no Celery task named {name}"


def test_send_reports_an_unreachable_broker_instead_of_raising(app, monkeypatch, caplog):
    def broker_down(*_: Any, **__: Any) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setitem(jobs._senders, jobs.FEED_REBUILD, broker_down)
    assert jobs.send(jobs.FEED_REBUILD, 1) is False
    assert any("could not send job feed.rebuild" in r.getMessage() for r in caplog.records)


def test_an_unknown_job_is_a_programming_error():
    with pytest.raises(LookupError):
        jobs.send("no.such.job", 1)
