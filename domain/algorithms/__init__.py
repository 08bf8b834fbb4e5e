"""Pure algorithms: parsing, geometry, metrics, privacy, stream codecs, matching.

Nothing in this package imports Flask, Celery or SQLAlchemy, so the tests (and the benchmarks) call it
directly and the Celery stages stay thin wrappers around it.
"""
