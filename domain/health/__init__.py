"""Health: foods and meals, water and reminders, sleep and body metrics (health-app sync: ``domain.health_sync``).

Every record is its owner's alone: read, changed and deleted by the athlete who wrote it (anyone else gets
404, the same answer as for an id that does not exist), never shown in feeds, groups or to other athletes,
and removed with the account (foreign keys cascade from ``users``).
"""
