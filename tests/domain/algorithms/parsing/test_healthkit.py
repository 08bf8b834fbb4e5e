"""Apple Health export (export.xml) parsing: detection, workouts, heart rate, totals, hardening."""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from domain.algorithms.parsing import (
    ParseError,
    Track,
    count_health_workouts,
    detect_type,
    iter_zip,
    normalize,
    parse_bytes,
    parse_health_workout,
    parse_health_workouts,
)
from domain.algorithms.parsing.container import TYPES
from domain.algorithms.parsing.healthkit import apple_times
from domain.algorithms.parsing.timeparse import parse_time
from tests.support.corpus import corpus_file

CORPUS_EXPORT = corpus_file("health/dogsheep__healthkit-to-sqlite__tests_export.xml")

# The shape of the internal DTD subset every real export starts with (abridged; real ones are longer).
APPLE_DTD = """<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 11 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
<!ELEMENT WorkoutRoute ((MetadataEntry|FileReference|Location)*)>
<!ELEMENT Location EMPTY>
]>
"""
TZ = timezone(timedelta(hours=-7))
T0 = datetime(2021, 5, 1, 8, 0, 0, tzinfo=TZ)


def stamp(seconds: float) -> str:
    """Apple's timestamp layout, ``seconds`` after T0, in the -0700 zone."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S %z")


def epoch(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def hr_record(seconds: float, bpm: float) -> str:
    return (f'<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
            f'creationDate="{stamp(seconds)}" startDate="{stamp(seconds)}" endDate="{stamp(seconds)}" '
            f'value="{bpm}"><MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/></Record>\n')


def other_record(seconds: float) -> str:
    return (f'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="Phone" unit="count" '
            f'startDate="{stamp(seconds)}" endDate="{stamp(seconds + 60)}" value="42"/>\n')


def location(seconds: float, lat: float, lon: float) -> str:
    return (f'<Location date="{stamp(seconds)}" latitude="{lat:.6f}" longitude="{lon:.6f}" altitude="12.5" '
            f'horizontalAccuracy="3" verticalAccuracy="2" course="90" speed="3"/>\n')


def workout(kind: str, start: float, end: float, body: str = "", totals: str = "") -> str:
    return (f'<Workout workoutActivityType="HKWorkoutActivityType{kind}" duration="{(end - start) / 60}" '
            f'durationUnit="min" {totals} sourceName="Alice’s Apple Watch" sourceVersion="7.0" '
            f'startDate="{stamp(start)}" endDate="{stamp(end)}">\n'
            f'<MetadataEntry key="HKIndoorWorkout" value="0"/>\n{body}</Workout>\n')


def export(body: str, dtd: str = APPLE_DTD) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{dtd}<HealthData locale="en_US">\n'
            f'<ExportDate value="{stamp(99_999)}"/>\n<Me HKCharacteristicTypeIdentifierBiologicalSex="x"/>\n'
            f"{body}</HealthData>\n").encode()


def route(start: float, n: int, lat0: float = 47.0) -> str:
    points = "".join(location(start + i, lat0 + i * 2e-5, 8.0) for i in range(n))
    return f'<WorkoutRoute sourceName="Phone" startDate="{stamp(start)}">\n{points}</WorkoutRoute>\n'


# Three workouts: a run with a route (0-600 s), a ride without a route (1000-1600 s) and a strength
# session in the newer export style (2000-2300 s). HR records sit outside the workout elements, before,
# between and after them, in each workout's own bpm band, plus resting samples outside every window.
RUN_HR = [(float(s), 140 + s // 60) for s in range(5, 600, 10)]
RIDE_HR = [(float(s), 150 + (s - 1000) // 100) for s in range(1000, 1601, 20)]
LIFT_HR = [(float(s), 100 + (s - 2000) // 100) for s in range(2000, 2301, 30)]
REST_HR = [(-300.0, 60), (800.0, 61), (1700.0, 62), (5000.0, 63)]


def multi_export() -> bytes:
    parts = [other_record(-1000)]
    parts += [hr_record(t, v) for t, v in REST_HR[:1] + RUN_HR[: len(RUN_HR) // 2]]
    parts.append(workout("Running", 0, 600, route(3, 500),
                         'totalDistance="1.2" totalDistanceUnit="km" totalEnergyBurned="80" '
                         'totalEnergyBurnedUnit="kcal"'))
    parts += [hr_record(t, v) for t, v in RUN_HR[len(RUN_HR) // 2:] + REST_HR[1:2]]
    parts.append(workout("Cycling", 1000, 1600, '<WorkoutRoute sourceName="Phone"><FileReference '
                                                'path="/workout-routes/route_1.gpx"/></WorkoutRoute>\n',
                         'totalDistance="3" totalDistanceUnit="mi"'))
    parts += [hr_record(t, v) for t, v in RIDE_HR + REST_HR[2:3]]
    stats = ('<WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="x" endDate="x" '
             'sum="418.4" unit="kJ"/>\n<WorkoutEvent type="HKWorkoutEventTypeLap" '
             f'date="{stamp(2150)}"/>\n')
    parts.append(workout("TraditionalStrengthTraining", 2000, 2300, stats))
    parts.append(other_record(2400))
    parts += [hr_record(t, v) for t, v in LIFT_HR + REST_HR[3:]]
    parts.append('<ActivitySummary dateComponents="2021-05-01" activeEnergyBurned="500"/>\n')
    return export("".join(parts))


MULTI = multi_export()


def elapsed(track: Track) -> float:
    return float(track.time[-1] - track.time[0])


# --------------------------------------------------------------------------- corpus


def test_corpus_export() -> None:
    data = CORPUS_EXPORT.read_bytes()
    kind = detect_type("export.xml", data[:4096])
    assert kind == "health"
    raw = parse_bytes(data, kind)
    track = normalize(raw)
    assert track.sport == "running"
    assert track.device == "Apple Watch"
    assert track.name is None
    assert track.has_gps
    assert len(track) >= 2
    assert np.all(np.diff(track.time) > 0)
    assert elapsed(track) == pytest.approx(311.0)  # 07:25:41 → 07:30:52
    assert track.totals["distance_m"] == pytest.approx(800.1, abs=0.1)  # 0.49717 mi
    assert track.totals["duration_s"] == pytest.approx(5.19412346680959 * 60)
    assert track.totals["energy_kcal"] == pytest.approx(48.745)
    assert not track.has("hr")  # its only HR record is from 2018, outside the 2016 workout
    assert count_health_workouts(data) == 1


# --------------------------------------------------------------------------- detection


def test_detect_type_health() -> None:
    assert "health" in TYPES
    assert detect_type("export.xml", MULTI[:4096]) == "health"
    assert detect_type(None, b'<?xml version="1.0"?>\n<HealthData locale="en_US">') == "health"
    # A real DTD is often longer than the sniffed head, so the root element is not in it.
    long_dtd = APPLE_DTD.replace("]>", "<!-- padding -->\n" * 400 + "]>")
    data = export("", dtd=long_dtd)
    assert data.find(b"<HealthData") > 4096
    assert detect_type("export.xml", data[:4096]) == "health"
    # The name alone proves nothing.
    with pytest.raises(ParseError, match="Unrecognised file type"):
        detect_type("export.xml", b"<Something/>")
    # Only plain exports are accepted.
    with pytest.raises(ParseError, match="gzip-compressed Apple Health export"):
        detect_type("export.xml.gz", gzip.compress(MULTI))
    # Other formats are unaffected.
    assert detect_type("a.gpx", b'<?xml version="1.0"?>\n<!DOCTYPE gpx><gpx version="1.1">') == "gpx"


def test_phone_export_zip_does_not_yield_export_xml() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("apple_health_export/export.xml", MULTI)
        zf.writestr("apple_health_export/export_cda.xml", b"<ClinicalDocument/>")
        zf.writestr("apple_health_export/workout-routes/route_1.gpx", b"<gpx/>")
    assert [name for name, _ in iter_zip(buf.getvalue())] == ["apple_health_export/workout-routes/route_1.gpx"]


# --------------------------------------------------------------------------- workouts


def test_multi_workout_export() -> None:
    assert count_health_workouts(MULTI) == 3
    run, ride, lift = (parse_health_workout(MULTI, i) for i in range(3))
    assert (run.sport, ride.sport, lift.sport) == ("running", "cycling", "strength")
    assert run.device == "Alice’s Apple Watch" and run.name is None

    assert np.nansum(~np.isnan(run.lat)) == 500
    assert sorted(run.hr[~np.isnan(run.hr)].tolist()) == sorted(v for _, v in RUN_HR)
    assert sorted(ride.hr[~np.isnan(ride.hr)].tolist()) == sorted(v for _, v in RIDE_HR)
    assert sorted(lift.hr[~np.isnan(lift.hr)].tolist()) == sorted(v for _, v in LIFT_HR)

    assert run.totals == pytest.approx({"distance_m": 1200.0, "duration_s": 600.0, "energy_kcal": 80.0})
    assert ride.totals == pytest.approx({"distance_m": 3 * 1609.344, "duration_s": 600.0})
    assert lift.totals == pytest.approx({"duration_s": 300.0, "energy_kcal": 100.0})  # 418.4 kJ
    assert lift.laps == [epoch(2150)]

    for track, (start, end) in zip((run, ride, lift), ((0, 600), (1000, 1600), (2000, 2300)), strict=True):
        clean = normalize(track)
        assert clean.time[0] == epoch(start) and clean.time[-1] == epoch(end)
        assert np.all(np.diff(clean.time) > 0)
        assert clean.totals == track.totals
    assert normalize(run).has_gps
    assert not normalize(ride).has_gps and normalize(ride).has("hr")  # route only in a separate GPX


def test_parse_bytes_is_workout_zero_and_all_in_one_pass_matches() -> None:
    first = parse_bytes(MULTI, "health")
    every = parse_health_workouts(MULTI)
    assert len(every) == 3
    for i, track in enumerate(every):
        single = parse_health_workout(MULTI, i)
        for column in ("time", "lat", "lon", "ele", "hr"):
            np.testing.assert_array_equal(getattr(track, column), getattr(single, column))
        assert (track.sport, track.totals, track.laps) == (single.sport, single.totals, single.laps)
    np.testing.assert_array_equal(first.time, every[0].time)
    np.testing.assert_array_equal(first.hr, every[0].hr)


def test_route_order_kept_and_hr_on_equal_times_merged() -> None:
    # Fixes at 3, 5, 7 s. HR at 5 s coincides with a fix, 4 s falls between two, 9 s after the route.
    fixes = "".join(location(t, 47.0 + t * 1e-5, 8.0) for t in (3, 5, 7))
    body = "".join(hr_record(t, v) for t, v in ((5, 120), (4, 110), (9, 130)))
    data = export(body + workout("Walking", 0, 10, f"<WorkoutRoute>{fixes}</WorkoutRoute>"))
    track = parse_health_workout(data, 0)
    assert track.time.tolist() == [epoch(s) for s in (0, 3, 4, 5, 7, 9, 10)]
    assert np.isnan(track.lat).tolist() == [True, False, True, False, False, True, True]
    assert np.isnan(track.hr).tolist() == [True, True, False, False, True, False, True]
    assert track.hr[2] == 110 and track.hr[3] == 120 and track.hr[5] == 130
    assert np.count_nonzero(~np.isnan(normalize(track).lat)) == 3  # no fix lost to a duplicate time


def test_bounds_only_added_outside_the_route_span() -> None:
    # The route starts before the workout and ends after it: nothing to add.
    data = export(workout("Hiking", 5, 8, route(3, 10)))
    track = parse_health_workout(data, 0)
    assert len(track) == 10 and not np.isnan(track.lat).any()
    assert track.sport == "hiking"


def test_unknown_sport_and_units() -> None:
    body = workout("Yoga", 0, 60, totals='totalDistance="100" totalDistanceUnit="yd" '
                                         'totalEnergyBurned="5" totalEnergyBurnedUnit="furlongs"')
    body = body.replace('duration="1.0" durationUnit="min"', 'duration="0.5" durationUnit="h"')
    body += workout("Swimming", 100, 200, totals='totalDistance="-3" totalDistanceUnit="m"')
    body += workout("Running", 300, 400, totals='totalDistance="3280.84" totalDistanceUnit="ft"')
    yoga, swim, run = parse_health_workouts(export(body))
    assert yoga.sport == "other"
    assert yoga.totals == pytest.approx({"distance_m": 91.44, "duration_s": 1800.0})
    assert swim.sport == "swimming" and "distance_m" not in swim.totals
    assert run.totals["distance_m"] == pytest.approx(1000.0, abs=0.01)


def test_totals_survive_take_and_normalize() -> None:
    track = parse_health_workout(MULTI, 0)
    assert track.take(np.arange(3)).totals == track.totals
    taken = track.take(np.arange(3))
    taken.totals["distance_m"] = 0.0
    assert track.totals["distance_m"] == 1200.0  # a copy, not shared
    assert Track.empty(2).totals == {}


def test_apple_times() -> None:
    samples = ["2016-11-14 07:25:44 -0700", "2020-02-29 23:59:59 +0530", "2016-11-14 07:25:44 +0000",
               "2016-11-14T07:25:44Z", "garbage", "2016-13-14 07:25:44 -0700", None]
    got = apple_times(samples)
    assert got[0] == datetime(2016, 11, 14, 14, 25, 44, tzinfo=UTC).timestamp()
    assert got[1] == datetime(2020, 2, 29, 18, 29, 59, tzinfo=UTC).timestamp()
    for s, value in zip(samples[2:], got[2:], strict=True):
        expected = parse_time(s)
        assert (np.isnan(value) and np.isnan(expected)) or value == expected


# --------------------------------------------------------------------------- failures


def test_count_ignores_workout_text_in_comments_and_cdata() -> None:
    body = ('<!-- <Workout workoutActivityType="x"/> -->\n<Record type="x" value="1"><![CDATA[<Workout>]]>'
            '</Record>\n<?note <Workout/> ?>\n' + workout("Running", 0, 60) + "<WorkoutRoute/>\n")
    data = export(body)
    assert count_health_workouts(data) == 1
    assert count_health_workouts(MULTI.replace(b"<Record", b"<!-- c --><Record", 1)) == 3
    assert count_health_workouts(export("")) == 0


def test_no_workouts() -> None:
    data = export(hr_record(0, 70) + other_record(10))
    assert count_health_workouts(data) == 0
    with pytest.raises(ParseError, match="contains no workouts"):
        parse_bytes(data, "health")
    with pytest.raises(ParseError, match="contains no workouts"):
        parse_health_workouts(data)


def test_missing_workout_index() -> None:
    with pytest.raises(ParseError, match="contains 3 workouts"):
        parse_health_workout(MULTI, 3)
    with pytest.raises(ParseError, match="does not exist"):
        parse_health_workout(MULTI, -1)


def test_truncated_and_invalid() -> None:
    cut = MULTI[: len(MULTI) // 2]
    for call in (lambda: parse_bytes(cut, "health"), lambda: count_health_workouts(cut),
                 lambda: parse_health_workouts(cut)):
        with pytest.raises(ParseError, match=r"^The Apple Health export is not valid XML: .*truncated"):
            call()
    with pytest.raises(ParseError, match=r"^The Apple Health export is not valid XML"):
        parse_bytes(b"<HealthData><Workout></HealthData>", "health")
    with pytest.raises(ParseError, match="not an Apple Health export"):
        parse_bytes(b'<gpx version="1.1"></gpx>', "health")
    with pytest.raises(ParseError, match="not an Apple Health export"):
        count_health_workouts(b"<TrainingCenterDatabase/>")


def test_workout_without_times() -> None:
    data = export('<Workout workoutActivityType="HKWorkoutActivityTypeRunning" startDate="soon" endDate="later"/>')
    with pytest.raises(ParseError, match="no readable start or end time"):
        parse_health_workout(data, 0)
    assert len(parse_health_workouts(data)[0]) == 0


BILLION_LAUGHS = """<!DOCTYPE HealthData [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;">]>
"""


@pytest.mark.parametrize(("dtd", "message"), [
    (BILLION_LAUGHS, "entities"),
    ('<!DOCTYPE HealthData SYSTEM "http://example.com/health.dtd">\n', "external document type"),
    ('<!DOCTYPE HealthData PUBLIC "-//x//y" "health.dtd">\n', "external document type"),
    ("<!DOCTYPE gpx [<!ELEMENT gpx ANY>]>\n", "not Apple Health's"),
    ('<!DOCTYPE HealthData [<!ENTITY % p SYSTEM "http://example.com/p">%p;]>\n', "entities"),
    # An undeclared parameter entity would make expat skip undefined entities silently.
    ("<!DOCTYPE HealthData [<!ELEMENT HealthData ANY>\n%p;\n]>\n", "parameter entities"),
])
def test_hostile_doctypes_rejected(dtd: str, message: str) -> None:
    data = export(workout("Running", 0, 60, route(1, 3)), dtd=dtd)
    for call in (lambda: parse_bytes(data, "health"), lambda: count_health_workouts(data)):
        with pytest.raises(ParseError, match=message):
            call()


def test_xxe_rejected(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    dtd = f'<!DOCTYPE HealthData [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    data = export(workout("Running", 0, 60, route(1, 3)).replace("Watch", "&xxe;", 1), dtd=dtd)
    with pytest.raises(ParseError) as info:
        parse_bytes(data, "health")
    assert "TOPSECRET" not in str(info.value)


def test_undefined_entity_rejected() -> None:
    data = export(workout("Running", 0, 60, route(1, 3)).replace("Watch", "&foo;", 1))
    with pytest.raises(ParseError, match="not valid XML"):
        parse_bytes(data, "health")


def test_utf16_export() -> None:
    data = MULTI.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert detect_type("export.xml", data[:4096]) == "health"
    assert count_health_workouts(data) == 3
    assert parse_health_workout(data, 2).sport == "strength"


# --------------------------------------------------------------------------- fuzz


def _fuzz_inputs() -> list[bytes]:
    rng = random.Random(4321)
    seeds = [MULTI, CORPUS_EXPORT.read_bytes()]
    cases: list[bytes] = []
    for data in seeds:
        for _ in range(12):
            cases.append(data[: rng.randrange(0, len(data) + 1)])
            mutated = bytearray(data)
            for _ in range(rng.randrange(1, 30)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            cases.append(bytes(mutated))
            # Attribute-level damage keeps the XML valid and reaches the value parsing.
            text = data.decode("utf-8")
            for token in ("-0700", "latitude=\"", "value=\"", "startDate=\""):
                text = text.replace(token, token + rng.choice(["", "x", "-", "9999", " "]), rng.randrange(0, 5))
            cases.append(text.encode())
        cases.append(rng.randbytes(rng.randrange(0, 2000)))
    return cases


FUZZ = _fuzz_inputs()


@pytest.mark.parametrize("data", FUZZ, ids=[f"health-{i}" for i in range(len(FUZZ))])
def test_fuzz_only_parse_errors(data: bytes) -> None:
    try:
        count_health_workouts(data)
        for track in parse_health_workouts(data):
            try:
                normalize(track)
            except ParseError as exc:
                assert str(exc)
        normalize(parse_bytes(data, "health"))
    except ParseError as exc:
        assert str(exc)
        assert "Traceback" not in str(exc)
