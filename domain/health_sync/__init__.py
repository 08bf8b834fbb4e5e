"""Health-app sync: HealthKit / Health Connect batches (sync), Apple Health exports (export_import) and the
workouts among them (workouts).

Above ``domain.health``: a synced sample becomes a health record (``domain.health``) or, for a workout, an
activity or an upload (``domain.activities``, ``domain.uploads``) whose training load the insights follow, and
the insights read health records themselves, so this cannot live inside ``domain.health``.
"""
