"""Reading health records out of an Apple Health export as a stream (iOS 16's broken DTD included)."""

from __future__ import annotations

import io
import pyexpat
from datetime import UTC, datetime

import pytest

from domain.algorithms.parsing.health_records import iter_health_records
from domain.algorithms.track import ParseError
from tests.support.health_export import PROLOG, small_export


def test_the_ios16_doctype_is_not_well_formed_for_a_dtd_reading_parser():
    parser = pyexpat.ParserCreate()
    with pytest.raises(pyexpat.ExpatError):
        parser.Parse(PROLOG + b"</HealthData>", True)


class Trickle(io.BytesIO):
    """Hands out at most 7 bytes a read: the reader must not depend on how the stream is cut."""

    def read(self, size: int = -1, /) -> bytes:
        return super().read(min(7, size) if size and size > 0 else 7)


def test_records_of_the_wanted_kinds_with_times_and_units():
    samples = list(iter_health_records(io.BytesIO(small_export())))
    assert [s["type"] for s in samples] == ["sleep"] * 5 + [
        "resting_heart_rate", "hrv_sdnn", "body_mass", "body_mass", "water", "nutrition"]
    first = samples[0]
    assert first["stage"] == "HKCategoryValueSleepAnalysisInBed"
    assert first["start"] == datetime(2026, 11, 28, 21, 30, tzinfo=UTC)
    assert samples[7]["value"] == 165 and samples[7]["unit"] == "lb"
    assert samples[9]["unit"] == "ml" and samples[10]["unit"] == "kcal"
    assert len({s["source_id"] for s in samples}) == len(samples)
    assert list(iter_health_records(Trickle(small_export()))) == samples


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><!DOCTYPE HealthData SYSTEM "http://example.com/x.dtd"><HealthData/>',
    b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "b">]><gpx/>',
    b'<?xml version="1.0"?><HealthData><Record type="x" value="&boom;"/></HealthData>',
    b'<?xml version="1.0"?><gpx></gpx>',
    PROLOG + b'<Record type="HKQuantityTypeIdentifierBodyMass"',  # truncated
])
def test_hostile_or_broken_files_are_refused(data):
    with pytest.raises(ParseError):
        list(iter_health_records(io.BytesIO(data)))
