"""The TCX and FIT writers (and GPX beside them): valid against the published schemas / readable by fitdecode with
a correct CRC, and read back by our own parsers to the same distance and time."""

from __future__ import annotations

import io
from pathlib import Path

import fitdecode
import numpy as np
import pytest
import xmlschema

from domain.algorithms.fit_writer import to_fit
from domain.algorithms.gpx_writer import to_gpx
from domain.algorithms.metrics import headline_figures
from domain.algorithms.parsing import normalize, parse_bytes
from domain.algorithms.tcx_writer import to_tcx
from domain.algorithms.track import ParseError, Track
from tests.support.synthetic import synthetic_track

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "schemas"


@pytest.fixture(scope="module")
def tcx_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "TrainingCenterDatabasev2.xsd"))


@pytest.fixture(scope="module")
def gpx_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "gpx-1.1.xsd"))


def _ride() -> Track:
    return synthetic_track(seed=5, n_points=2400, speed_mps=8.0, sport="cycling", with_cadence=True,
                           with_power=True, with_temp=True, laps=3)


def _run() -> Track:
    run = synthetic_track(seed=6, n_points=1800, speed_mps=3.2, with_cadence=True)
    run.cadence = run.cadence * 2  # as stored: steps per minute (the synthetic file's is per foot, like a watch's)
    return run


@pytest.mark.parametrize("make", [_ride, _run])
@pytest.mark.parametrize("fmt", ["gpx", "tcx", "fit"])
def test_reimport_gives_the_same_distance_time_and_columns(make, fmt):
    track = make()
    data = {"gpx": to_gpx(track), "tcx": to_tcx(track), "fit": to_fit(track)}[fmt]
    back = normalize(parse_bytes(data, fmt))
    before, after = headline_figures(track, track.sport), headline_figures(back, track.sport)
    assert after["distance_m"] == pytest.approx(before["distance_m"], rel=0.005)
    assert after["elapsed_time_s"] == pytest.approx(before["elapsed_time_s"], rel=0.005)
    assert len(back) == len(track)
    assert back.sport == track.sport
    np.testing.assert_allclose(back.lat, track.lat, atol=1e-6)
    np.testing.assert_allclose(back.hr, np.round(track.hr), atol=0.5)
    # Cadence round-trips in steps per minute for a run (written per foot), rpm for a ride.
    np.testing.assert_allclose(np.nanmean(back.cadence), np.nanmean(track.cadence), rtol=0.02)
    if fmt != "gpx" and track.sport == "cycling":
        assert len(back.laps) == 3


def test_tcx_and_gpx_validate_against_the_published_schemas(tcx_schema, gpx_schema):
    for track in (_ride(), _run()):
        tcx_schema.validate(to_tcx(track).decode())
        gpx_schema.validate(to_gpx(track).decode())


def test_tcx_keeps_points_without_a_position(tcx_schema):
    track = _run()
    track.lat[100:200] = np.nan
    track.lon[100:200] = np.nan
    data = to_tcx(track)
    tcx_schema.validate(data.decode())
    back = normalize(parse_bytes(data, "tcx"))
    assert len(back) == len(track) and int(np.isnan(back.lat).sum()) == 100


def test_a_schema_violation_is_caught(tcx_schema):
    # The validator is real: a Trackpoint with its elements out of the schema's order is refused.
    bad = to_tcx(_run()).replace(b"<Time>", b"<DistanceMeters>0</DistanceMeters><Time>", 1)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        tcx_schema.validate(bad.decode())


def test_fit_is_readable_by_fitdecode_with_a_correct_crc():
    track = _ride()
    data = to_fit(track)
    names: dict[str, int] = {}
    with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.ENABLED) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage):
                names[frame.name] = names.get(frame.name, 0) + 1
                if frame.name == "session":
                    assert frame.get_value("sport") == "cycling"
                    assert frame.get_value("total_distance") == pytest.approx(
                        headline_figures(track, "cycling")["distance_m"], rel=0.005)
    assert names["record"] == len(track)
    assert names["lap"] == 3 and names["session"] == 1 and names["activity"] == 1 and names["file_id"] == 1
    # One flipped bit anywhere is a CRC failure, for fitdecode and for our parser.
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    with (pytest.raises(fitdecode.FitCRCError),
          fitdecode.FitReader(io.BytesIO(bytes(damaged)), check_crc=fitdecode.CrcCheck.ENABLED) as reader):
        for _ in reader:
            pass
    with pytest.raises(ParseError):
        parse_bytes(bytes(damaged), "fit")


def test_fit_writes_missing_values_as_invalid():
    track = _run()
    track.hr[10:20] = np.nan
    track.ele[:] = np.nan
    back = normalize(parse_bytes(to_fit(track), "fit"))
    assert np.isnan(back.hr[10:20]).all() and not np.isnan(back.hr[20:]).any()
    assert np.isnan(back.ele).all()


def test_writers_are_pure():
    track = _ride()
    assert to_fit(track) == to_fit(track) and to_tcx(track) == to_tcx(track)
