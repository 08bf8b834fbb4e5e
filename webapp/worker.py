"""Worker, beat and Flower entry point: `celery -A webapp.worker worker|beat|flower`.

The worker runs the same ``create_app()`` as the web, so both read one configuration and share the Celery app
made from it; the tasks then run inside that app's context (``tasks.app.AppTask``).
"""

from __future__ import annotations

from webapp import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
