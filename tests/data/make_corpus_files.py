"""Writes the corpus files this project makes itself (``corpus/*/strava-plus-one__*``).

Each file reproduces the shape of a device or app export that the parser tests need - header, layout,
number formats, which values are missing - on a made-up track, so it can be committed under the
project's own licence (AGPL-3.0-or-later). Run from the repository root::

    python tests/data/make_corpus_files.py

The output depends on nothing but this script: every number is an integer from a seeded
``random.Random`` (integer draws only, no floating-point maths), turned into decimal text by integer
arithmetic, so any Python 3 on any platform writes the same bytes. ``tests/test_data_provenance.py``
regenerates the files and compares them with the committed ones, and PROVENANCE.tsv records their git
blob ids like those of the copied files.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"

# Each unit vector of a 16-point compass rose, times 1000 (north, then clockwise).
_ROSE = [(1000, 0), (924, 383), (707, 707), (383, 924), (0, 1000), (-383, 924), (-707, 707), (-924, 383),
         (-1000, 0), (-924, -383), (-707, -707), (-383, -924), (0, -1000), (383, -924), (707, -707),
         (924, -383)]


def _decimal(units: int, places: int, strip: bool = False) -> str:
    """``units`` * 10**-places as exact decimal text; ``strip`` drops trailing zeros (keeping one digit)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**places)
    digits = f"{frac:0{places}d}"
    if strip:
        digits = digits.rstrip("0") or "0"
    return f"{sign}{whole}.{digits}" if places else f"{sign}{whole}"


def _iso(ms: int, offset_h: int = 0, frac: str = "none") -> str:
    """A timestamp of ``ms`` milliseconds since the epoch, written in local time at ``offset_h`` hours.

    ``frac``: "none" (whole seconds), "ms" (always three digits) or "short" (trailing zeros dropped,
    none at all on a whole second).
    """
    sec, milli = divmod(ms, 1000)
    local = datetime.fromtimestamp(sec, UTC) + timedelta(hours=offset_h)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if frac == "ms":
        text += f".{milli:03d}"
    elif frac == "short" and milli:
        text += "." + f"{milli:03d}".rstrip("0")
    if offset_h:
        return text + f"{'+' if offset_h > 0 else '-'}{abs(offset_h):02d}:00"
    return text + "Z"


def _epoch_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1000


class _Walk:
    """A made-up route: legs of constant heading with a little jitter, in integer coordinate units.

    ``unit`` is the number of coordinate units per degree; ``lon_stretch`` (per mille) widens the east
    component so that a step covers about the same ground at the route's latitude.
    """

    def __init__(self, rng: random.Random, lat: int, lon: int, unit: int, lon_stretch: int) -> None:
        self.rng, self.lat, self.lon, self.unit, self.stretch = rng, lat, lon, unit, lon_stretch
        self.heading = rng.randrange(16)
        self.leg = 0

    def step(self, metres_x10: int) -> tuple[int, int]:
        """Move ``metres_x10`` decimetres (about; 1 degree of latitude taken as 111 km) and return the position."""
        if self.leg <= 0:
            self.heading = (self.heading + self.rng.choice([-2, -1, -1, 0, 1, 1, 2])) % 16
            self.leg = self.rng.randrange(8, 40)
        self.leg -= 1
        north, east = _ROSE[self.heading]
        per_1000_dm = self.unit // 1110  # coordinate units per 1000 decimetres of latitude
        jitter = metres_x10 * per_1000_dm // 20_000
        self.lat += north * metres_x10 * per_1000_dm // 1_000_000 + self.rng.randrange(-jitter, jitter + 1)
        self.lon += (east * metres_x10 * per_1000_dm // 1_000_000) * self.stretch // 1000
        self.lon += self.rng.randrange(-jitter, jitter + 1)
        return self.lat, self.lon


def garmin_gpx11_no_extensions() -> bytes:
    """GPX 1.1 in the layout of a Garmin handheld: tab-indented, metadata link and time, a track extension,
    10-decimal coordinates, barometric elevation in 0.48 m steps, whole-second UTC times at irregular
    ("smart recording") intervals, no point extensions - and a first ``<trkpt>`` with time and elevation
    but no lat/lon, written before the first fix.
    """
    rng = random.Random(20130204)
    unit = 10**10
    walk = _Walk(rng, 47_376_912_345 * unit // 10**9, 8_541_694_321 * unit // 10**9, unit, 1480)
    t = _epoch_ms("2021-03-14T09:05:00")
    ele = 41283  # centimetres
    pts = [f"\t\t\t<trkpt>\n\t\t\t\t<ele>{_decimal(ele, 2)}</ele>\n\t\t\t\t<time>{_iso(t)}</time>\n\t\t\t</trkpt>\n"]
    t += 11_000
    lat, lon = walk.step(0)
    for i in range(299):
        if i:
            dt = rng.choice([1, 1, 2, 3, 5, 6, 8, 9, 11, 12, 16, 21])
            t += dt * 1000
            lat, lon = walk.step(dt * rng.randrange(10, 15))  # 1.0-1.4 m/s: a walk
            ele = max(40600, min(42100, ele + 48 * rng.choice([-1, 0, 0, 0, 1])))
        pts.append(f'\t\t\t<trkpt lat="{_decimal(lat, 10)}" lon="{_decimal(lon, 10)}">\n'
                   f"\t\t\t\t<ele>{_decimal(ele, 2)}</ele>\n\t\t\t\t<time>{_iso(t)}</time>\n\t\t\t</trkpt>\n")
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxx="http://www.garmin.com/xmlschemas/GpxExtensions/v3" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" creator="strava-plus-one test corpus" '
        'version="1.1" xsi:schemaLocation="http://www.topografix.com/GPX/1/1 '
        'http://www.topografix.com/GPX/1/1/gpx.xsd">\n'
        "\t<metadata>\n\t\t<link href=\"https://example.invalid/\">\n\t\t\t<text>Handheld GPS</text>\n"
        f"\t\t</link>\n\t\t<time>{_iso(t + 15_000)}</time>\n\t</metadata>\n"
        "\t<trk>\n\t\t<name>14-MAR-21 10:05:00</name>\n\t\t<extensions>\n\t\t\t<gpxx:TrackExtension>\n"
        "\t\t\t\t<gpxx:DisplayColor>Cyan</gpxx:DisplayColor>\n\t\t\t</gpxx:TrackExtension>\n"
        "\t\t</extensions>\n\t\t<trkseg>\n"
    )
    return (head + "".join(pts) + "\t\t</trkseg>\n\t</trk>\n</gpx>\n").encode("utf-8")


#: Points of gpx10_hr_not_always_there written without any <extensions> (so without heart rate).
HR_GAPS = {17, 18, 29, 41, 42, 43, 57}


def gpx10_hr_not_always_there() -> bytes:
    """A phone app's GPX: ``version="1.0"`` on the GPX 1.1 namespace, single-quoted XML declaration with
    ``standalone``, tab-indented, metadata bounds and app extensions, a non-ASCII track name, ``<time>``
    before ``<ele>``, millisecond UTC times, Garmin TrackPointExtension hr/cad/power - and points with no
    extensions at all (heart rate missing) now and then.
    """
    rng = random.Random(20160916)
    unit = 10**6
    walk = _Walk(rng, 46_948_012, 7_447_426, unit, 1460)
    t = _epoch_ms("2022-06-18T05:12:07") + 381
    hr, ele = 104, 541
    pts = []
    lat, lon = walk.step(0)
    for i in range(60):
        if i:
            t += rng.choice([3, 4, 5, 5, 5, 6, 7]) * 1000 + rng.randrange(-30, 41)
            lat, lon = walk.step(rng.randrange(100, 140) * 5 // 4)
            ele = max(525, min(560, ele + rng.choice([-1, 0, 0, 1, 1])))
            hr = max(100, min(165, hr + rng.choice([-2, -1, 0, 1, 2, 3, 3])))
        cad = 0 if i < 3 else rng.randrange(80, 91)
        power = 0 if i < 3 else rng.randrange(150, 261)
        ext = "" if i in HR_GAPS else (
            "\t\t\t\t<extensions>\n\t\t\t\t\t<gpxtpx:TrackPointExtension>\n"
            f"\t\t\t\t\t\t<gpxtpx:hr>{hr}</gpxtpx:hr>\n\t\t\t\t\t\t<gpxtpx:cad>{cad}</gpxtpx:cad>\n"
            f"\t\t\t\t\t\t<gpxtpx:power>{power}</gpxtpx:power>\n"
            "\t\t\t\t\t</gpxtpx:TrackPointExtension>\n\t\t\t\t</extensions>\n")
        pts.append(f'\t\t\t<trkpt lat="{_decimal(lat, 6, strip=True)}" lon="{_decimal(lon, 6, strip=True)}">\n'
                   f"\t\t\t\t<time>{_iso(t, frac='ms')}</time>\n\t\t\t\t<ele>{ele}</ele>\n{ext}\t\t\t</trkpt>\n")
    head = (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
        '<gpx xmlns="http://www.topografix.com/GPX/1/1" creator="strava-plus-one test corpus" version="1.0" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1" '
        'xmlns:app="urn:example:workout-extension">\n'
        "\t<metadata>\n"
        '\t\t<bounds minlat="46.92" minlon="7.42" maxlat="46.98" maxlon="7.48" />\n'
        "\t\t<extensions>\n\t\t\t<app:sport>17</app:sport>\n\t\t\t<app:minhr>100</app:minhr>\n"
        "\t\t</extensions>\n\t</metadata>\n"
        "\t<trk>\n\t\t<name>Morgenlauf Süd</name>\n\t\t<desc></desc>\n\t\t<trkseg>\n"
    )
    return (head + "".join(pts) + "\t\t</trkseg>\n\t</trk>\n</gpx>\n").encode("utf-8")


#: Points per <trkseg> of break_between_trksegs; the middle segment is a lone point.
SEGMENTS = (600, 1, 360)


def break_between_trksegs() -> bytes:
    """One track in three ``<trkseg>`` with pauses between them, the layout of a phone sports app:
    ``<?xml version="1.0"?>`` without encoding, a character reference in the track name, coordinates with
    15 decimals (more digits than a double holds exactly; trailing zeros dropped), elevation in half
    metres, local times with a +02:00 offset and milliseconds of varying length. The lone point of the
    second segment follows the first segment after 5 s; the third starts 63 minutes later, a few
    kilometres away. No point extensions.
    """
    rng = random.Random(20100402)
    unit = 10**15
    walk = _Walk(rng, 61_497_752 * unit // 10**6 + 318_274_912, 23_760_954 * unit // 10**6 + 771_093_526, unit, 2100)
    t = _epoch_ms("2023-04-02T07:41:06") + 317
    ele = 230  # half metres
    segs = []
    for n_seg, size in enumerate(SEGMENTS):
        if n_seg == 1:
            t += 5_000 - rng.randrange(0, 20)
            lat, lon = walk.step(60)
        elif n_seg == 2:
            t += 63 * 60_000 + rng.randrange(0, 999)
            walk.lat -= 12 * unit // 1000
            walk.lon -= 160 * unit // 1000
            lat, lon = walk.step(0)
        pts = []
        for i in range(size):
            if n_seg == 0 and i == 0:
                lat, lon = walk.step(0)
            elif i:
                dt = rng.choice([5] * 12 + [10, 15, 20])
                t += dt * 1000 + rng.randrange(-40, 61)
                lat, lon = walk.step(dt * rng.randrange(30, 41))  # 3-4 m/s: skiing
                ele = max(160, min(330, ele + rng.choice([-2, -1, -1, 0, 1, 1, 2])))
            pts.append(f'      <trkpt lat="{_decimal(lat, 15, strip=True)}" lon="{_decimal(lon, 15, strip=True)}">\n'
                       f"        <ele>{_decimal(ele * 5, 1, strip=True).removesuffix('.0')}</ele>\n"
                       f"        <time>{_iso(t, 2, frac='short')}</time>\n      </trkpt>\n")
        segs.append("    <trkseg>\n" + "".join(pts) + "    </trkseg>\n")
    head = (
        '<?xml version="1.0"?>\n'
        '<gpx xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ec="urn:example:coach-extensions" '
        'version="1.1" creator="strava-plus-one test corpus" '
        'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">\n'
        "  <trk>\n    <name>P&#xE4;iv&#xE4;n lenkki</name>\n    <number>1</number>\n"
    )
    return (head + "".join(segs) + "  </trk>\n</gpx>\n").encode("utf-8")


_TCX_ROOT = (
    'xsi:schemaLocation="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2 '
    'http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd" '
    'xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2" '
    'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)

#: Trackpoints of tcx_run_lowercase_sport_hr_gaps per <Lap>.
RUN_LAPS = (14, 12)
#: Trackpoints (counted over the whole file) written without <HeartRateBpm>.
RUN_HR_GAPS = range(6, 13)


def tcx_run_lowercase_sport_hr_gaps() -> bytes:
    """A phone app's TCX run: ``Sport="running"`` in lower case, a ``creator`` attribute instead of a
    Creator element, two laps with summaries, times with ``.000`` milliseconds, 16-decimal coordinates,
    whole-metre DistanceMeters that stand still while the position wanders at the start, and trackpoints
    without heart rate in the middle.
    """
    rng = random.Random(20150510)
    unit = 10**16
    walk = _Walk(rng, 535_510_864 * unit // 10**7 + 97_211_456, 99_937_042 * unit // 10**7 + 30_517_578, unit, 1680)
    t0 = t = _epoch_ms("2024-05-11T16:47:05")
    hr, dist, alt, k = 128, 0, 12, 0
    laps = []
    lat, lon = walk.step(0)
    for n_lap, size in enumerate(RUN_LAPS):
        lap_start, lap_dist = t, dist
        tps, lap_hr = [], []
        for i in range(size):
            if k:
                dt = rng.choice([1, 2, 2, 3, 3, 4, 5])
                t += dt * 1000
                if k > 2:  # the first three fixes are the same position
                    lat, lon = walk.step(dt * 31)
                if k > 12:
                    dist += dt * 3 + rng.randrange(0, 2)
                alt = max(8, min(16, alt + rng.choice([-1, 0, 1])))
                hr = max(120, min(160, hr + rng.choice([-1, 0, 1, 2, 2])))
            hr_el = "" if k in RUN_HR_GAPS else (
                f"            <HeartRateBpm>\n              <Value>{hr}</Value>\n            </HeartRateBpm>\n")
            if k not in RUN_HR_GAPS:
                lap_hr.append(hr)
            tps.append(
                f"          <Trackpoint>\n            <Time>{_iso(t, frac='ms')}</Time>\n{hr_el}"
                f"            <DistanceMeters>{dist}</DistanceMeters>\n"
                f"            <AltitudeMeters>{alt}.0</AltitudeMeters>\n            <Position>\n"
                f"              <LatitudeDegrees>{_decimal(lat, 16)}</LatitudeDegrees>\n"
                f"              <LongitudeDegrees>{_decimal(lon, 16)}</LongitudeDegrees>\n"
                "            </Position>\n          </Trackpoint>\n")
            k += 1
            if i == 0:
                lap_start = t  # a lap starts at its first trackpoint
        laps.append(
            f'      <Lap StartTime="{_iso(lap_start, frac="ms")}">\n'
            f"        <TotalTimeSeconds>{(t - lap_start) // 1000}</TotalTimeSeconds>\n"
            f"        <DistanceMeters>{dist - lap_dist}</DistanceMeters>\n"
            f"        <Calories>{7 * (n_lap + 1)}</Calories>\n"
            f"        <AverageHeartRateBpm>\n          <Value>{sum(lap_hr) // len(lap_hr)}</Value>\n"
            f"        </AverageHeartRateBpm>\n        <MaximumHeartRateBpm>\n          <Value>{max(lap_hr)}</Value>\n"
            "        </MaximumHeartRateBpm>\n        <TriggerMethod>Manual</TriggerMethod>\n"
            "        <Track>\n" + "".join(tps) + "        </Track>\n      </Lap>\n")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<TrainingCenterDatabase version="1.0" creator="strava-plus-one test corpus" {_TCX_ROOT}>\n'
        '  <Activities>\n    <Activity Sport="running">\n'
        f"      <Id>{_iso(t0, frac='ms')}</Id>\n" + "".join(laps)
        + "    </Activity>\n  </Activities>\n</TrainingCenterDatabase>\n"
    ).encode("utf-8")


#: Trackpoints of tcx_treadmill_run_cadence, and how many open it without heart rate.
TREADMILL_POINTS = 240
TREADMILL_NO_HR = 7


def tcx_treadmill_run_cadence() -> bytes:
    """A treadmill run in TCX: ``Sport="Running"``, no Position anywhere, 1 s trackpoints with
    DistanceMeters (none on the first), heart rate from the eighth trackpoint on, and a footpod's Speed
    and RunCadence in a ``TPX`` element that declares the ActivityExtension namespace itself. RunCadence
    is already in steps per minute: a slow start (0, then 40-90), walking at about 115-121, running at
    about 170-180 for the last 100 trackpoints.
    """
    rng = random.Random(20160107)
    t0 = _epoch_ms("2024-01-09T06:58:40")
    dist_mm, hr = 0, 92
    tps = []
    for i in range(TREADMILL_POINTS):
        if i == 0:
            cad = 0
        elif i < 30:
            cad = rng.randrange(40, 91)
        elif i < 140:
            cad = rng.randrange(115, 122)
        else:
            cad = rng.randrange(170, 181)
        speed_mm = 0 if i == 0 else (cad * 1500 // 100 if cad < 150 else cad * 1560 // 100)  # mm/s
        dist_mm += speed_mm
        if i >= TREADMILL_NO_HR:
            hr = max(88, min(168, hr + rng.choice([0, 0, 1, 1, 2] if i > 140 else [-1, 0, 0, 1])))
        parts = [f"                    <Trackpoint>\n                        <Time>{_iso(t0 + i * 1000)}</Time>\n"]
        if i:
            parts.append(f"                        <DistanceMeters>{_decimal(dist_mm, 3)}</DistanceMeters>\n")
        if i >= TREADMILL_NO_HR:
            parts.append(f"                        <HeartRateBpm>\n                            <Value>{hr}</Value>\n"
                         "                        </HeartRateBpm>\n")
        parts.append(
            "                        <Extensions>\n"
            '                            <TPX xmlns="http://www.garmin.com/xmlschemas/ActivityExtension/v2" '
            'CadenceSensor="Footpod">\n'
            + (f"                                <Speed>{_decimal(speed_mm, 3)}</Speed>\n" if i else "")
            + f"                                <RunCadence>{cad}</RunCadence>\n"
            "                            </TPX>\n                        </Extensions>\n"
            "                    </Trackpoint>\n")
        tps.append("".join(parts))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<TrainingCenterDatabase {_TCX_ROOT}>\n    <Activities>\n"
        '        <Activity Sport="Running">\n'
        f"            <Id>{_iso(t0)}</Id>\n"
        f'            <Lap StartTime="{_iso(t0)}">\n'
        f"                <TotalTimeSeconds>{TREADMILL_POINTS - 1}.0</TotalTimeSeconds>\n"
        f"                <DistanceMeters>{dist_mm // 1000}</DistanceMeters>\n"
        "                <Intensity>Active</Intensity>\n                <TriggerMethod>Manual</TriggerMethod>\n"
        "                <Track>\n" + "".join(tps) + "                </Track>\n            </Lap>\n"
        "        </Activity>\n    </Activities>\n</TrainingCenterDatabase>\n"
    ).encode("utf-8")


def gpx_route_without_times() -> bytes:
    """A route drawn in a planner and exported as a GPX *track*: one ``<trk>`` of 5-decimal points with
    elevation from a terrain model and no ``<time>`` anywhere (no recording, so no duration to store)."""
    rng = random.Random(20190412)
    unit = 10**5
    walk = _Walk(rng, 4_605_123, 1_450_456, unit, 1440)
    ele = 2950  # decimetres
    pts = []
    for i in range(180):
        lat, lon = walk.step(0 if i == 0 else rng.randrange(150, 400))
        ele = max(2800, min(3400, ele + rng.choice([-15, -5, 0, 5, 10, 20])))
        pts.append(f'      <trkpt lat="{_decimal(lat, 5)}" lon="{_decimal(lon, 5)}">\n'
                   f"        <ele>{_decimal(ele, 1)}</ele>\n      </trkpt>\n")
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="strava-plus-one test corpus (route planner)" '
        'xmlns="http://www.topografix.com/GPX/1/1">\n'
        "  <metadata>\n    <name>Saturday loop (planned)</name>\n  </metadata>\n"
        "  <trk>\n    <name>Saturday loop (planned)</name>\n    <trkseg>\n"
    )
    return (head + "".join(pts) + "    </trkseg>\n  </trk>\n</gpx>\n").encode("utf-8")


def gpx_single_point() -> bytes:
    """A recording stopped right after it started: one ``<trkpt>`` with a time (a phone app's GPX 1.1)."""
    t = _epoch_ms("2023-09-02T07:41:19")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="strava-plus-one test corpus" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"  <metadata>\n    <time>{_iso(t)}</time>\n  </metadata>\n"
        "  <trk>\n    <name>Morning Run</name>\n    <type>running</type>\n    <trkseg>\n"
        '      <trkpt lat="51.5081230" lon="-0.0759490">\n        <ele>14.2</ele>\n'
        f"        <time>{_iso(t)}</time>\n      </trkpt>\n"
        "    </trkseg>\n  </trk>\n</gpx>\n"
    ).encode()


#: Start dates of the tracks of gpx_tracks_months_apart: one GPX holding a season's outings.
SEASON = ("2019-03-02T08:15:00", "2019-03-09T09:02:00", "2019-05-18T07:40:00", "2019-06-21T18:05:00")


def gpx_tracks_months_apart() -> bytes:
    """Several outings exported into one GPX, one ``<trk>`` each, days to months apart (111 days from the first
    start to the last), as a logger's "export all" or a merge tool writes them; each is a 1 Hz walk."""
    rng = random.Random(20190302)
    unit = 10**7
    tracks = []
    for n, start in enumerate(SEASON):
        walk = _Walk(rng, 474_012_345 + 1000 * n, 85_401_234, unit, 1480)
        t = _epoch_ms(start)
        pts = []
        for i in range(120):
            lat, lon = walk.step(0 if i == 0 else rng.randrange(11, 15))
            pts.append(f'      <trkpt lat="{_decimal(lat, 7)}" lon="{_decimal(lon, 7)}">'
                       f"<time>{_iso(t + 1000 * i)}</time></trkpt>\n")
        tracks.append(f"  <trk>\n    <name>Walk {start[:10]}</name>\n    <trkseg>\n" + "".join(pts)
                      + "    </trkseg>\n  </trk>\n")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="strava-plus-one test corpus" xmlns="http://www.topografix.com/GPX/1/1">\n'
        + "".join(tracks) + "</gpx>\n"
    ).encode("utf-8")


# ---------------------------------------------------------------------------------------------- FIT

_FIT_EPOCH_MS = _epoch_ms("1989-12-31T00:00:00")


def _fit_crc(data: bytes) -> int:
    """The FIT CRC-16 (reflected 0xA001, init 0), bit by bit: a few kB only."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _fit_define(local: int, global_num: int, fields: list[tuple[int, int, int]]) -> bytes:
    """A little-endian definition message: (field number, size in bytes, base type) per field."""
    return (bytes([0x40 | local, 0, 0]) + global_num.to_bytes(2, "little") + bytes([len(fields)])
            + b"".join(bytes(f) for f in fields))


def _fit_data(local: int, *values: tuple[int, int]) -> bytes:
    """A data message of (value, size) pairs, little-endian unsigned."""
    return bytes([local]) + b"".join(v.to_bytes(size, "little") for v, size in values)


def fit_coros_odd_field_size() -> bytes:
    """A run in the layout of a COROS watch's FIT: file_id naming COROS (manufacturer 294) and the product,
    ``event`` messages whose ``data`` field (a uint32) is declared with size 1 - not a multiple of its base
    type, which strict decoders reject - 1 Hz records with position, enhanced altitude, heart rate and
    cadence, then a lap, a session and an activity message. Stored with header and file CRCs.
    """
    rng = random.Random(20250619)
    t0 = (_epoch_ms("2025-06-19T09:53:41") - _FIT_EPOCH_MS) // 1000
    sc_per_deg = 2**31 // 180
    walk = _Walk(rng, -22_970_000 * sc_per_deg // 10**6, -43_182_000 * sc_per_deg // 10**6, sc_per_deg, 1090)
    n = 600
    body = [
        _fit_define(0, 0, [(0, 1, 0x00), (1, 2, 0x84), (2, 2, 0x84), (4, 4, 0x86), (3, 4, 0x8C)]),
        _fit_data(0, (4, 1), (294, 2), (841, 2), (t0, 4), (0xFFFFFFFF, 4)),
        # event: timestamp, event, event_type, data - declared uint32 (0x86) but 1 byte long
        _fit_define(1, 21, [(253, 4, 0x86), (0, 1, 0x00), (1, 1, 0x00), (3, 1, 0x86)]),
        _fit_data(1, (t0, 4), (0, 1), (0, 1), (0, 1)),
        # record: timestamp, position_lat, position_long, enhanced_altitude, heart_rate, cadence, distance
        _fit_define(2, 20, [(253, 4, 0x86), (0, 4, 0x85), (1, 4, 0x85), (78, 4, 0x86), (3, 1, 0x02),
                            (4, 1, 0x02), (5, 4, 0x86)]),
    ]
    alt, hr, dist_cm = 12 * 5 + 2500, 96, 0  # enhanced_altitude: (m + 500) * 5
    for i in range(n):
        step_dm = 0 if i == 0 else rng.randrange(27, 34)
        lat, lon = walk.step(step_dm)
        dist_cm += step_dm * 10
        alt = max(2510, min(2700, alt + rng.choice([-1, 0, 0, 1])))
        hr = max(95, min(172, hr + rng.choice([-1, 0, 1, 1, 2])))
        cad = 0 if i < 4 else rng.randrange(84, 90)
        body.append(_fit_data(2, (t0 + i, 4), (lat % 2**32, 4), (lon % 2**32, 4), (alt, 4), (hr, 1), (cad, 1),
                              (dist_cm, 4)))
    t1 = t0 + n - 1
    body += [
        _fit_data(1, (t1, 4), (0, 1), (4, 1), (0, 1)),  # timer stop_all, data again 1 byte
        _fit_define(3, 19, [(253, 4, 0x86), (2, 4, 0x86), (7, 4, 0x86), (9, 4, 0x86)]),
        _fit_data(3, (t1, 4), (t0, 4), ((n - 1) * 1000, 4), (dist_cm, 4)),
        _fit_define(4, 18, [(253, 4, 0x86), (2, 4, 0x86), (5, 1, 0x00), (6, 1, 0x00), (7, 4, 0x86),
                            (8, 4, 0x86), (9, 4, 0x86), (11, 2, 0x84)]),
        _fit_data(4, (t1, 4), (t0, 4), (1, 1), (0, 1), ((n - 1) * 1000, 4), ((n - 1) * 1000, 4), (dist_cm, 4),
                  (41, 2)),
        _fit_define(5, 34, [(253, 4, 0x86), (0, 4, 0x86), (1, 2, 0x84)]),
        _fit_data(5, (t1, 4), ((n - 1) * 1000, 4), (1, 2)),
    ]
    records = b"".join(body)
    header = bytes([14, 0x20]) + (2132).to_bytes(2, "little") + len(records).to_bytes(4, "little") + b".FIT"
    header += _fit_crc(header).to_bytes(2, "little")
    data = header + records
    return data + _fit_crc(data).to_bytes(2, "little")


def build() -> dict[str, bytes]:
    """Every generated file, by its path under tests/data (as PROVENANCE.tsv names it)."""
    return {
        "corpus/gpx/strava-plus-one__garmin-gpx11-no-extensions.gpx": garmin_gpx11_no_extensions(),
        "corpus/gpx/strava-plus-one__gpx10-hr-not-always-there.gpx": gpx10_hr_not_always_there(),
        "corpus/gpx/strava-plus-one__break-between-trksegs.gpx": break_between_trksegs(),
        "corpus/tcx/strava-plus-one__run-lowercase-sport-hr-gaps.tcx": tcx_run_lowercase_sport_hr_gaps(),
        "corpus/tcx/strava-plus-one__treadmill-run-cadence.tcx": tcx_treadmill_run_cadence(),
        "corpus/gpx/strava-plus-one__route-without-times.gpx": gpx_route_without_times(),
        "corpus/gpx/strava-plus-one__single-point.gpx": gpx_single_point(),
        "corpus/gpx/strava-plus-one__tracks-months-apart.gpx": gpx_tracks_months_apart(),
        "corpus/fit/strava-plus-one__coros-odd-field-size.fit": fit_coros_odd_field_size(),
    }


def main() -> int:
    for name, data in build().items():
        path = CORPUS.parent / name
        path.write_bytes(data)
        print(f"{len(data):8d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
