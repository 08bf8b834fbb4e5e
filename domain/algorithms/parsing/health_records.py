"""Health records of an Apple Health export (``export.xml``): sleep, resting heart rate, HRV, body mass, body fat,
height, water and dietary energy, read as a stream in bounded memory.

Real exports are 1–2 GB, most of it heart-rate, step and energy samples we do not store as records, so the file
is fed to expat in 1 MiB chunks from any binary stream and only the wanted ``<Record>`` elements become samples
(in the shape ``POST /health/sync`` takes, ``source_id`` a digest of the record since exports carry no ids).

The document type declaration is dropped before parsing, not parsed: iOS 16 writes an internal subset that is
not well-formed (strict parsers stop at it), and nothing in it is needed. Dropping it also leaves nothing that
could declare an entity, and the parser still refuses external entities and any reference to an undeclared one.
"""

from __future__ import annotations

import hashlib
import pyexpat
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from domain.algorithms.parsing import xmlsafe
from domain.algorithms.track import ParseError

CHUNK = 1 << 20
#: The prolog (XML declaration, DOCTYPE with its internal subset) is read whole; Apple's is about 10 kB.
MAX_PROLOG = 4 << 20

#: HealthKit record type → (our sample type, unit mapping to what the sync accepts).
RECORD_TYPES: dict[str, str] = {
    "HKCategoryTypeIdentifierSleepAnalysis": "sleep",
    "HKQuantityTypeIdentifierRestingHeartRate": "resting_heart_rate",
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": "hrv_sdnn",
    "HKQuantityTypeIdentifierBodyMass": "body_mass",
    "HKQuantityTypeIdentifierBodyFatPercentage": "body_fat",
    "HKQuantityTypeIdentifierHeight": "height",
    "HKQuantityTypeIdentifierDietaryWater": "water",
    "HKQuantityTypeIdentifierDietaryEnergyConsumed": "nutrition",
}
#: Apple's unit names → the sync's.
UNITS = {"count/min": "count/min", "ms": "ms", "kg": "kg", "lb": "lb", "g": "g", "%": "fraction", "cm": "cm",
         "m": "m", "in": "in", "mL": "ml", "L": "l", "fl_oz_us": "fl_oz_us", "kcal": "kcal", "Cal": "kcal",
         "kJ": "kj"}


class Readable(Protocol):
    """A binary stream: an open file, a gzip stream, BytesIO."""

    def read(self, size: int, /) -> bytes: ...


_DOCTYPE = re.compile(rb"<!DOCTYPE\s+([A-Za-z_:][\w.:-]*)\s*(SYSTEM|PUBLIC)?")


def apple_time(text: str | None) -> datetime | None:
    """``2016-11-14 07:25:44 -0700`` → an aware datetime (None when unreadable)."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return None


def _prolog(stream: Readable) -> bytes:
    """The start of the document with its DOCTYPE declaration cut out (the rest is read later, in chunks)."""
    head = b""
    while b"<HealthData" not in head and len(head) < MAX_PROLOG:
        more = stream.read(CHUNK)
        if not more:
            break
        head += more
    start = head.find(b"<!DOCTYPE")
    root = head.find(b"<HealthData")
    if start < 0 or (root >= 0 and start > root):
        return head
    match = _DOCTYPE.match(head, start)
    if match is None or match.group(1) != b"HealthData":
        raise ParseError("The Apple Health export is not valid XML: its document type is not Apple Health's")
    if match.group(2) is not None:
        raise ParseError("The Apple Health export is not valid XML: it refers to an external document type "
                         "definition, which is not allowed")
    end = head.find(b"]>", start)
    simple_end = head.find(b">", start)
    if b"[" in head[start:simple_end]:
        if end < 0:
            raise ParseError("The Apple Health export is not valid XML: its document type declaration never ends")
        end += 2
    else:
        end = simple_end + 1
    return head[:start] + head[end:]


def source_id(attrs: dict[str, str]) -> str:
    key = "\x1f".join(attrs.get(k, "") for k in ("type", "sourceName", "startDate", "endDate", "value", "unit",
                                                 "creationDate"))
    return "export-" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()


def _sample(attrs: dict[str, str]) -> dict[str, Any] | None:
    kind = RECORD_TYPES.get(attrs.get("type", ""))
    if kind is None:
        return None
    start, end = apple_time(attrs.get("startDate")), apple_time(attrs.get("endDate"))
    if start is None:
        return None
    sample: dict[str, Any] = {"type": kind, "source_id": source_id(attrs)}
    if kind == "sleep":
        if end is None:
            return None
        sample.update(start=start, end=end, stage=attrs.get("value"))
        return sample
    try:
        sample["value"] = float(attrs.get("value", ""))
    except ValueError:
        return None
    unit = attrs.get("unit")
    sample["unit"] = UNITS.get(unit or "", unit)
    sample["at"] = start
    return sample


def iter_health_records(stream: Readable) -> Iterator[dict[str, Any]]:
    """Every wanted record of the export, in file order, as a sync sample; memory stays about one chunk."""
    parser = xmlsafe.new_parser()
    pending: list[dict[str, Any]] = []

    def element(name: str, attrs: dict[str, str]) -> None:
        if name == "Record":
            sample = _sample(attrs)
            if sample is not None:
                pending.append(sample)

    def first(name: str, attrs: dict[str, str]) -> None:
        if name != "HealthData":
            raise ParseError(f"The file is not an Apple Health export (its root element is <{name[:50]}>)")
        parser.StartElementHandler = element

    parser.StartElementHandler = first
    try:
        chunk = _prolog(stream)
        while chunk:
            parser.Parse(chunk, False)
            yield from pending
            pending.clear()
            chunk = stream.read(CHUNK)
        parser.Parse(b"", True)
        yield from pending
    except xmlsafe.ForbiddenXML as exc:
        raise ParseError(f"The Apple Health export is not valid XML: {exc}") from None
    except pyexpat.ExpatError as exc:
        raise ParseError(f"The Apple Health export is not valid XML: {xmlsafe.describe_expat_error(exc)}") from None


def count_records(stream: Readable) -> int:
    """How many ``<Record>`` elements the export has (every type), for figures."""
    parser = xmlsafe.new_parser()
    count = [0]

    def element(name: str, _attrs: dict[str, str]) -> None:
        if name == "Record":
            count[0] += 1

    parser.StartElementHandler = element
    chunk = _prolog(stream)
    while chunk:
        parser.Parse(chunk, False)
        chunk = stream.read(CHUNK)
    parser.Parse(b"", True)
    return count[0]
