"""Worker, beat and Flower entry point: `celery -A tasks.worker worker|beat|flower`."""

from __future__ import annotations

from webapp import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
