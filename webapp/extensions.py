"""Extension objects shared across apps. The flask-smorest Api is built per app in create_app() because
it holds that app's OpenAPI spec; flask-sock keeps its routes on a blueprint and can serve many apps."""

from __future__ import annotations

from flask_sock import Sock

sock = Sock()
