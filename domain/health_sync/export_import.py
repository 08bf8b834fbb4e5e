"""Health records from an Apple Health export: streamed from the file, written through the sync in batches.

Unlike an app's batch, an export is years of data from many apps: a record we can't take (a weight of 0, a
sleep sample of two days) is skipped and counted, not a reason to refuse the rest. Records carry no ids, so each
is keyed by a digest of its content (``domain.algorithms.parsing.health_records.source_id``): importing the same
export again, or a later one that repeats it, changes nothing. Each batch commits on its own, so memory stays
bounded whatever the size of the export.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from typing import Any

from domain import clock, jobs
from domain.algorithms.parsing.health_records import Readable, iter_health_records
from domain.errors import Refusal, refuse
from domain.health_sync import sync
from models import User, db
from models.storage import storage

BATCH = 5000


def import_export(user: User, stream: Readable) -> dict[str, int]:
    counts = {"records": 0, "skipped": 0, "created": 0, "updated": 0, "unchanged": 0}
    batch: dict[str, sync.Sample] = {}

    def flush() -> None:
        if batch:
            result = sync.write(user, "healthkit", list(batch.values()), [], None)
            for key in ("created", "updated", "unchanged"):
                counts[key] += int(result[key])
            batch.clear()

    now = clock.now()
    for raw in iter_health_records(stream):
        counts["records"] += 1
        if raw["source_id"] in batch:
            counts["unchanged"] += 1  # the same record twice in the file
            continue
        try:
            sample = sync.parse_sample(counts["records"], raw, now)
        except Refusal:
            counts["skipped"] += 1
            continue
        batch[sample.source_id] = sample
        if len(batch) >= BATCH:
            flush()
    flush()
    return counts


def summary(counts: dict[str, Any]) -> str:
    return (f"{counts['records']} health records read: {counts['created']} new, {counts['updated']} updated, "
            f"{counts['unchanged']} already there, {counts['skipped']} skipped")


def accept(user: User, data: bytes) -> dict[str, Any]:
    """Store an uploaded export (``export.xml``, or gzipped) and import its health records in the background."""
    gzipped = data[:2] == b"\x1f\x8b"
    head = data[:4096]
    if gzipped:
        try:
            with gzip.open(io.BytesIO(data)) as fh:
                head = fh.read(4096)
        except (OSError, EOFError):
            head = b""
    if b"<HealthData" not in head:
        refuse(422, "This is not an Apple Health export (export.xml).",
               errors={"files": {"file": ["Not an Apple Health export."]}})
    key = f"health-exports/{user.id}/{hashlib.sha256(data).hexdigest()}.xml" + (".gz" if gzipped else "")
    storage.put(key, data)
    jobs.send(jobs.HEALTH_IMPORT_EXPORT, user.id, key)
    return {"status": "queued", "storage_key": key}


def import_stored(user_id: int, key: str) -> dict[str, int] | None:
    """The background half of ``accept``: idempotent (records are keyed by their content), so a redelivered
    message only finds everything there already. The stored object is removed once imported."""
    user = db.session.get(User, user_id)
    if user is None:
        return None
    data = storage.get(key)
    try:
        with gzip.open(io.BytesIO(data)) if key.endswith(".gz") else io.BytesIO(data) as stream:
            counts = import_export(user, stream)
    finally:
        storage.delete(key)  # imported, or unreadable for good: either way it is not kept
    return counts
