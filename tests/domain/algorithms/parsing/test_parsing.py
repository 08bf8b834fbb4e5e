"""Tests for domain.algorithms.parsing: corpus expectations, gpxpy parity, hardening, normalisation, containers."""

from __future__ import annotations

import gzip
import io
import math
import random
import re
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from domain.algorithms.parsing import (
    MAX_DECOMPRESSED_BYTES,
    ParseError,
    Track,
    detect_type,
    iter_zip,
    normalize,
    parse_bytes,
    timeparse,
)
from domain.algorithms.parsing import container as container_mod
from domain.algorithms.parsing.common import normalize_sport, running_cadence_spm
from domain.algorithms.parsing.normalize import find_spikes
from domain.algorithms.parsing.timeparse import parse_time, parse_times
from tests.support.corpus import corpus_file, corpus_match, manifest_rows

PARSED_FORMATS = {"gpx", "tcx", "fit"}
ROWS = [r for r in manifest_rows() if r["format"] in PARSED_FORMATS]


def _load(path: Path) -> Track:
    data = path.read_bytes()
    return normalize(parse_bytes(data, detect_type(path.name, data[:4096])))


def gpx(points: str, header: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="test" '
            f'xmlns="http://www.topografix.com/GPX/1/1" '
            f'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">{header}'
            f"<trk><trkseg>{points}</trkseg></trk></gpx>").encode()


def trkpt(lat: float | str, lon: float | str, t: str | None = None, extra: str = "") -> str:
    time_el = f"<time>{t}</time>" if t else ""
    return f'<trkpt lat="{lat}" lon="{lon}">{time_el}{extra}</trkpt>'


def ts(i: int) -> str:
    return datetime.fromtimestamp(1_600_000_000 + i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("row", ROWS, ids=[r["file"].split("/")[-1] for r in ROWS])
def test_corpus_expectation(row: dict[str, str]) -> None:
    path = corpus_file(row["file"])
    expected = row["expected"]
    if expected in ("corrupt", "refused"):
        with pytest.raises(ParseError):
            _load(path)
        return
    if expected == "no-gps" and path.name.endswith("empty_trk.gpx"):
        # A track with no points at all cannot become an activity: the upload fails with a clear message.
        with pytest.raises(ParseError, match="no track points"):
            _load(path)
        return
    track = _load(path)
    assert len(track) >= 2
    t = track.time
    assert not np.isnan(t).any()
    assert np.all(np.diff(t) > 0)
    if expected == "ok":
        assert track.has_gps
    else:
        assert expected == "no-gps"
        assert not track.has_gps


def test_corpus_messages_are_specific() -> None:
    def err(name: str) -> str:
        with pytest.raises(ParseError) as info:
            _load(corpus_match(f"*/{name}"))
        return str(info.value)

    assert err("*activity-filecrc.fit").startswith("The FIT file is damaged:")
    assert err("*activity-unexpected-eof.fit").startswith("The FIT file is damaged:")
    assert err("*truncated.gpx").startswith("The file is not valid GPX:")
    assert err("*bad.gpx").startswith("The file is not valid GPX:")


def test_corpus_details() -> None:
    cerknicko = _load(corpus_match("gpx/*cerknicko-without-times.gpx"))
    assert len(cerknicko) == 5  # only the 5 timed fixes are bounded in time (see normalize docs)

    treadmill = _load(corpus_match("tcx/*treadmill-run-cadence.tcx"))
    assert treadmill.sport == "running" and not treadmill.has_gps
    assert len(treadmill) == 240 and np.count_nonzero(~np.isnan(treadmill.hr)) == 233  # HR from the 8th point
    # This file already writes steps/min (170-180 while running): it must not be doubled again.
    assert 150 <= np.nanpercentile(treadmill.cadence, 90) <= 200

    run = _load(corpus_match("fit/*run.fit"))
    assert run.sport == "running"
    assert 140 <= np.nanmedian(run.cadence[run.cadence > 0]) <= 200  # per-foot FIT cadence doubled
    assert run.device and run.device.startswith("Garmin")
    assert len(run.laps) == 9

    edge = _load(corpus_match("fit/*Edge810*.fit"))
    assert edge.sport == "cycling" and edge.has("power") and edge.has("hr")
    assert 40 < np.nanmedian(edge.lat) < 60 or -60 < np.nanmedian(edge.lat) < 40  # degrees, not semicircles
    assert np.nanmax(np.abs(edge.lat)) <= 90

    garmin_tcx = _load(corpus_match("tcx/*garmin_connect.tcx"))
    assert garmin_tcx.sport == "cycling" and garmin_tcx.device == "Edge 520"
    assert garmin_tcx.has("power") and len(garmin_tcx.laps) == 1

    app_run = _load(corpus_match("tcx/*run-lowercase-sport-hr-gaps.tcx"))
    assert app_run.sport == "running" and app_run.has("hr")  # Sport="running", lower case
    assert len(app_run) == 26 and np.count_nonzero(~np.isnan(app_run.hr)) == 19
    assert len(app_run.laps) == 2

    garmin_gpx = parse_bytes(corpus_match("gpx/*garmin-gpx11-no-extensions.gpx").read_bytes(), "gpx")
    assert len(garmin_gpx) == 300 and np.count_nonzero(np.isnan(garmin_gpx.lat)) == 1  # the point before the fix
    assert not garmin_gpx.has("hr")

    hr_gaps = parse_bytes(corpus_match("gpx/*gpx10-hr-not-always-there.gpx").read_bytes(), "gpx")
    assert len(hr_gaps) == 60 and np.count_nonzero(~np.isnan(hr_gaps.hr)) == 53

    segments = parse_bytes(corpus_match("gpx/*break-between-trksegs.gpx").read_bytes(), "gpx")
    assert segments.name == "Päivän lenkki" and len(segments) == 600 + 1 + 360  # all three trkseg, in order
    assert 3780 < np.max(np.diff(segments.time)) < 3781  # the 63-minute pause before the third trkseg

    strava = parse_bytes(corpus_match("gpx/*strava.gpx").read_bytes(), "gpx")
    assert strava.hr.tolist() == [117, 154, 160]
    assert strava.temp.tolist() == [22, 11, 9]  # first value in a point wins
    assert strava.power[0] == 75

    opentracks = _load(corpus_match("gpx/*OpenTracks*.gpx"))
    assert opentracks.sport == "cycling"
    assert np.count_nonzero(np.isnan(opentracks.lat)) == 2  # 222 km in 1 s: a spike, then still too far
    assert opentracks.has("power")


def _gpxpy_points(text: str) -> tuple[list, int]:
    import gpxpy

    try:
        g = gpxpy.parse(text)
        removed = 0
    except Exception:
        # gpxpy rejects a <trkpt> without lat/lon (garmin-gpx11-no-extensions.gpx); we keep such a point as a
        # time-only point. Compare everything else.
        stripped, removed = re.subn(r"<trkpt>.*?</trkpt>", "", text, flags=re.S)
        g = gpxpy.parse(stripped)
    points = [p for t in g.tracks for s in t.segments for p in s.points]
    if not points:
        points = [p for r in g.routes for p in r.points]
    return points, removed


# Refused files are readable GPX (they fail later, in normalize), so the parser must still read them right.
GPX_OK = [r for r in ROWS if r["format"] == "gpx" and r["expected"] in ("ok", "refused")]


@pytest.mark.parametrize("row", GPX_OK, ids=[r["file"].split("/")[-1] for r in GPX_OK])
def test_gpx_matches_gpxpy(row: dict[str, str]) -> None:
    data = corpus_file(row["file"]).read_bytes()
    ours = parse_bytes(data, "gpx")
    ref, removed = _gpxpy_points(data.decode("utf-8"))
    keep = ~(np.isnan(ours.lat) & np.isnan(ours.lon)) if removed else np.ones(len(ours), dtype=bool)
    assert int(np.count_nonzero(~keep)) == removed
    lat, lon, ele, t = ours.lat[keep], ours.lon[keep], ours.ele[keep], ours.time[keep]
    assert len(lat) == len(ref)
    assert lat.tolist() == [p.latitude for p in ref]
    assert lon.tolist() == [p.longitude for p in ref]
    ref_ele = np.array([np.nan if p.elevation is None else p.elevation for p in ref])
    np.testing.assert_array_equal(ele, ref_ele)

    def epoch(dt: datetime | None) -> float:
        if dt is None:
            return math.nan
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()

    np.testing.assert_allclose(t, [epoch(p.time) for p in ref], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- GPX fast path


def _plain_gpx(n: int) -> bytes:
    pts = "".join(f'\n  <trkpt lat="{47 + i * 1e-5:.7f}" lon="8.5">\n    <ele>{400 + i % 7}.5</ele>\n'
                  f"    <time>{ts(i)}</time>\n    <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{120 + i % 40}"
                  f"</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions>\n  </trkpt>" for i in range(n))
    return gpx(pts, header="<metadata><name>Plain</name></metadata>")


FAST_CASES = {
    "plain": _plain_gpx(50),
    "lon_first": _plain_gpx(5).replace(b'lon="8.5"', b"").replace(b"<trkpt lat", b'<trkpt lon="8.5" lat'),
    "single_quotes": _plain_gpx(5).replace(b'"', b"'"),
    "self_closing_points": _plain_gpx(3).replace(b"</trkseg>", b'<trkpt lat="1" lon="2"/></trkseg>'),
    "char_reference": _plain_gpx(3).replace(b"<ele>", b"<ele>&#49;", 1),
    "comment_in_point": _plain_gpx(3).replace(b"<ele>", b"<!-- c --><ele>", 1),
    "cdata_value": _plain_gpx(3).replace(b"<time>", b"<time><![CDATA[", 1).replace(b"Z</time>", b"Z]]></time>", 1),
    "unreadable_values": _plain_gpx(4).replace(b"<ele>", b"<ele>bad</ele><ele>", 2).replace(
        b"<time>", b"<time></time><time>", 1).replace(b'lat="47', b'lat="x47', 1),
    "waypoint_after": _plain_gpx(3).replace(b"</gpx>", f'<wpt lat="1" lon="1"><ele>9</ele><time>{ts(99)}</time>'
                                          f"</wpt></gpx>".encode()),
    "route_only": _plain_gpx(3).replace(b"trkpt", b"rtept").replace(b"<trk><trkseg>", b"<rte>").replace(
        b"</trkseg></trk>", b"</rte>"),
    "value_with_child": _plain_gpx(3).replace(b"<ele>", b"<ele><b/>", 1),
    "latin1": _plain_gpx(3).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"').replace(
        b"Plain", "Plän".encode("latin-1")),
}


def _same_track(a: Track, b: Track) -> None:
    for c in ("time", "lat", "lon", "ele", "hr", "cadence", "power", "temp"):
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)
    assert (a.name, a.sport, a.device, a.laps) == (b.name, b.sport, b.device, b.laps)


def _both_paths(data: bytes) -> tuple[Track | str, Track | str]:
    from domain.algorithms.parsing.gpx import parse_gpx

    out: list[Track | str] = []
    for fast in (True, False):
        try:
            out.append(parse_gpx(data, fast=fast))
        except ParseError as exc:
            out.append(str(exc))
    return out[0], out[1]


GPX_ALL = [r for r in ROWS if r["format"] == "gpx"]


@pytest.mark.parametrize("data", [*FAST_CASES.values(), *[corpus_file(r["file"]).read_bytes() for r in GPX_ALL]],
                         ids=[*FAST_CASES, *[r["file"].split("/")[-1] for r in GPX_ALL]])
def test_fast_path_matches_streaming_engine(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from domain.algorithms.parsing import gpx as gpx_mod

    monkeypatch.setattr(gpx_mod, "SMALL_BYTES", 0)  # the vectorised paths whatever the size
    fast, streaming = _both_paths(data)
    if isinstance(fast, str) or isinstance(streaming, str):
        assert fast == streaming
    else:
        _same_track(fast, streaming)


def test_fast_path_is_taken_for_plain_files_and_declines_odd_ones() -> None:
    from domain.algorithms.parsing import gpxfast
    from domain.algorithms.parsing.gpx import _spec

    assert gpxfast.parse(FAST_CASES["plain"], _spec([])) is not None
    assert gpxfast.parse(FAST_CASES["lon_first"], _spec([])) is not None
    for odd in ("self_closing_points", "char_reference", "comment_in_point", "value_with_child", "latin1"):
        assert gpxfast.parse(FAST_CASES[odd], _spec([])) is None, odd


# --------------------------------------------------------------------------- GPX / TCX details


def test_gpx_extensions_any_prefix_and_metadata() -> None:
    pts = "".join(
        trkpt(47.0 + i * 1e-4, 8.0, ts(i),
              '<extensions><ns9:TrackPointExtension xmlns:ns9="urn:x"><ns9:hr>150</ns9:hr>'
              '<ns9:cad>80</ns9:cad></ns9:TrackPointExtension><pwr:PowerInWatts xmlns:pwr="urn:p">'
              '210</pwr:PowerInWatts></extensions>')
        for i in range(3))
    data = gpx(pts, header="<metadata><name>Morning</name></metadata>").replace(
        b"<trk>", b"<trk><name>Track name</name><type>Mountain Biking</type>")
    track = parse_bytes(data, "gpx")
    assert track.hr.tolist() == [150] * 3 and track.cadence.tolist() == [80] * 3
    assert track.power.tolist() == [210] * 3
    assert track.name == "Track name" and track.sport == "cycling" and track.device == "test"


def test_gpx_routes_only_when_no_track_points() -> None:
    route = (f'<rte><rtept lat="1" lon="2"><time>{ts(0)}</time></rtept>'
             f'<rtept lat="1.001" lon="2"><time>{ts(5)}</time></rtept></rte>')
    only_route = gpx("").replace(b"<trk><trkseg></trkseg></trk>", route.encode())
    assert len(parse_bytes(only_route, "gpx")) == 2
    both = gpx(trkpt(5, 5, ts(0))).replace(b"</gpx>", route.encode() + b"</gpx>")
    assert parse_bytes(both, "gpx").lat.tolist() == [5.0]


def test_gpx_1_0_and_timestamp_variants() -> None:
    data = (b'<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"><trk><trkseg>'
            b'<trkpt lat="1" lon="1"><time>2020-01-01T00:00:00.5+01:00</time></trkpt>'
            b'<trkpt lat="1" lon="1.0001"><time>2020-01-01T00:00:01</time></trkpt>'
            b"</trkseg></trk></gpx>")
    track = parse_bytes(data, "gpx")
    base = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    assert track.time.tolist() == [base - 3600 + 0.5, base + 1]


def test_tcx_points_laps_sport() -> None:
    def tp(i: int, extra: str) -> str:
        return (f"<Trackpoint><Time>{ts(i)}</Time><Position><LatitudeDegrees>{47 + i * 1e-4}</LatitudeDegrees>"
                f"<LongitudeDegrees>8</LongitudeDegrees></Position><AltitudeMeters>400</AltitudeMeters>"
                f"<HeartRateBpm><Value>140</Value></HeartRateBpm>{extra}</Trackpoint>")

    ext = '<Extensions><ns3:TPX xmlns:ns3="urn:tpx"><ns3:RunCadence>88</ns3:RunCadence></ns3:TPX></Extensions>'
    data = (f'<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
            f'<Activities><Activity Sport="RUNNING"><Lap StartTime="{ts(0)}"><Track>'
            + "".join(tp(i, ext) for i in range(3))
            + f'</Track></Lap><Lap StartTime="{ts(3)}"><Track>{tp(3, ext)}</Track></Lap>'
            "<Creator><Name>Forerunner 945</Name></Creator></Activity></Activities></TrainingCenterDatabase>")
    track = parse_bytes(data.encode(), "tcx")
    assert track.sport == "running" and track.device == "Forerunner 945"
    assert track.laps == [1_600_000_000.0, 1_600_000_003.0]
    assert track.cadence.tolist() == [176.0] * 4  # per-foot RunCadence → steps/min
    assert track.hr.tolist() == [140.0] * 4 and track.ele.tolist() == [400.0] * 4


def test_wrong_root_is_rejected() -> None:
    with pytest.raises(ParseError, match="not valid GPX"):
        parse_bytes(b"<TrainingCenterDatabase/>", "gpx")
    with pytest.raises(ParseError, match="not valid TCX"):
        parse_bytes(b"<gpx/>", "tcx")


# --------------------------------------------------------------------------- XML hardening

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<gpx><trk><name>&lol9;</name><trkseg><trkpt lat="1" lon="1"><time>2020-01-01T00:00:00Z</time></trkpt>
</trkseg></trk></gpx>"""


@pytest.mark.parametrize("kind", ["gpx", "tcx"])
def test_billion_laughs_rejected(kind: str) -> None:
    payload = BILLION_LAUGHS if kind == "gpx" else BILLION_LAUGHS.replace(b"gpx>", b"TrainingCenterDatabase>")
    with pytest.raises(ParseError, match="document type declaration"):
        parse_bytes(payload, kind)


def test_xxe_rejected(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    payload = (f'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file://{secret}">]>'
               f'<gpx><trk><name>&xxe;</name><trkseg>{trkpt(1, 1, ts(0))}{trkpt(1, 1.001, ts(9))}'
               f"</trkseg></trk></gpx>").encode()
    with pytest.raises(ParseError) as info:
        parse_bytes(payload, "gpx")
    assert "TOPSECRET" not in str(info.value)


def test_dtd_rejected_in_utf16() -> None:
    payload = BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(ParseError, match="document type declaration"):
        parse_bytes(payload.encode("utf-16"), "gpx")


def test_undefined_entity_is_parse_error() -> None:
    with pytest.raises(ParseError, match="not valid GPX"):
        parse_bytes(gpx(trkpt(1, 1, ts(0), "<ele>&foo;</ele>")), "gpx")


# --------------------------------------------------------------------------- normalize


def _track(**cols: object) -> Track:
    return Track.from_columns(**cols)


def test_normalize_drops_backwards_and_repeated_times_keeping_first() -> None:
    t = [0, 1, 1, 3, 2, 4]
    lat = [47 + i * 1e-5 for i in range(6)]
    out = normalize(_track(time=[1.6e9 + x for x in t], lat=lat, lon=[8.0] * 6))
    assert (out.time - 1.6e9).tolist() == [0, 1, 3, 4]
    assert out.lat.tolist() == [lat[0], lat[1], lat[3], lat[5]]


def test_normalize_spike_cleared_but_time_and_hr_kept() -> None:
    lat = [47.0, 47.00001, 48.0, 47.00002, 47.00003]
    out = normalize(_track(time=[1.6e9 + i for i in range(5)], lat=lat, lon=[8.0] * 5, hr=[120] * 5))
    assert len(out) == 5
    assert np.isnan(out.lat[2]) and np.isnan(out.lon[2])
    assert out.hr[2] == 120
    assert not np.isnan(out.lat[[0, 1, 3, 4]]).any()


def test_spike_threshold_is_a_parameter() -> None:
    lat = [47.0, 47.0008, 47.0016]  # ~89 m per second
    track = _track(time=[1.6e9, 1.6e9 + 1, 1.6e9 + 2], lat=lat, lon=[8.0] * 3)
    assert not np.isnan(normalize(track).lat).any()
    assert np.isnan(normalize(track, max_speed_mps=50).lat[1:]).all()


def test_stale_first_fix_is_dropped_and_real_relocation_kept() -> None:
    n = 20
    lat = np.array([47 + i * 1e-5 for i in range(n)])
    lat[0] = 10.0  # stale fix from the last session
    t = 1.6e9 + np.arange(n)
    assert find_spikes(t, lat, np.full(n, 8.0)).tolist() == [0]
    moved = np.array([47 + i * 1e-5 for i in range(n)])
    moved[10:] += 1.0  # the receiver jumped and stayed there: a few consistent fixes confirm the move
    assert find_spikes(t, moved, np.full(n, 8.0)).tolist() == []
    short = moved[:13]  # only 3 fixes after the jump: not confirmed, so they are treated as spikes
    assert find_spikes(t[:13], short, np.full(13, 8.0)).tolist() == [10, 11, 12]


def test_normalize_interpolates_partial_times_along_distance() -> None:
    lat = [47.0, 47.001, 47.003, 47.004, 47.005]
    time = [np.nan, 1.6e9, np.nan, 1.6e9 + 30, np.nan]
    out = normalize(_track(time=time, lat=lat, lon=[8.0] * 5))
    assert len(out) == 3  # untimed points outside the timed range are dropped
    assert out.time[1] == pytest.approx(1.6e9 + 20, abs=0.01)  # 2/3 of the distance → 2/3 of the time


def test_normalize_physical_ranges() -> None:
    out = normalize(_track(
        time=[1.6e9, 1.6e9 + 1, 1.6e9 + 2, 1.6e9 + 3],
        lat=[47.0, 0.0, 95.0, 47.0], lon=[8.0, 0.0, 8.0, 8.00001],
        hr=[10, 150, 300, 100], cadence=[300, 80, 80, 80], power=[5000, 200, -1, 0],
        ele=[-1000, 400, 10000, 400],
    ))
    assert np.isnan(out.lat[[1, 2]]).all() and not np.isnan(out.lat[[0, 3]]).any()
    assert np.isnan(out.hr[[0, 2]]).all() and out.hr[1] == 150
    assert np.isnan(out.cadence[0]) and np.isnan(out.power[[0, 2]]).all() and out.power[3] == 0
    assert np.isnan(out.ele[[0, 2]]).all()


@pytest.mark.parametrize(("time", "message"), [
    ([np.nan, np.nan, np.nan], "no timestamps: it looks like a planned route"),
    ([1.6e9, np.nan, np.nan], "only one point with a time"),
    ([1.6e9, 1.6e9, 1.6e9], "only one point with a time"),
])
def test_normalize_without_usable_times(time: list[float], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        normalize(_track(time=time, lat=[1.0, 1.0, 1.0], lon=[1.0, 1.0, 1.0]))


def test_normalize_empty_track() -> None:
    with pytest.raises(ParseError, match="contains no track points"):
        normalize(Track.empty())


@pytest.mark.parametrize("fast", [True, False])
def test_point_cap(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    import domain.algorithms.parsing.common as common
    from domain.algorithms.parsing import gpxfast
    from domain.algorithms.parsing.gpx import parse_gpx

    for module, batch in ((common, "TIME_BATCH"), (gpxfast, "_BATCH")):
        monkeypatch.setattr(module, "MAX_POINTS", 10)
        monkeypatch.setattr(module, batch, 4)
    data = gpx("".join(trkpt(1, 1 + i * 1e-5, ts(i)) for i in range(20)))
    with pytest.raises(ParseError, match="more than"):
        parse_gpx(data, fast=fast)
    assert len(parse_gpx(gpx("".join(trkpt(1, 1 + i * 1e-5, ts(i)) for i in range(9))), fast=fast)) == 9


# --------------------------------------------------------------------------- containers


def test_detect_type() -> None:
    assert detect_type("a.gpx", b'<?xml version="1.0"?>\n<!-- c --><gpx version="1.1">') == "gpx"
    assert detect_type(None, b"\xef\xbb\xbf<?xml version='1.0'?><gpx:gpx xmlns:gpx='x'>") == "gpx"
    assert detect_type("x.bin", b"<TrainingCenterDatabase xmlns='x'>") == "tcx"
    assert detect_type("x.gpx", b"\x0e\x10\x00\x00\x00\x00\x00\x00.FIT") == "fit"  # content wins
    assert detect_type("x.zip", b"PK\x03\x04rest") == "zip"
    assert detect_type("ride.tcx.gz", gzip.compress(b"whatever")) == "tcx.gz"
    assert detect_type(None, gzip.compress(b"<?xml version='1.0'?><gpx>")) == "gpx.gz"
    assert detect_type("a.gpx", b"garbage") == "gpx"  # the GPX parser then explains the problem
    with pytest.raises(ParseError, match="Unrecognised file type"):
        detect_type("notes.txt", b"hello")
    with pytest.raises(ParseError, match="Unrecognised file type"):
        detect_type(None, gzip.compress(b"hello"))


def test_gzip_roundtrip_and_bomb() -> None:
    data = gpx(trkpt(1, 1, ts(0)) + trkpt(1, 1.0001, ts(1)))
    assert len(parse_bytes(gzip.compress(data), "gpx.gz")) == 2
    # 300 MiB of zeros compresses to ~300 KiB; inflating must stop at the cap.
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    bomb = b"".join(comp.compress(block) for _ in range(300)) + comp.flush()
    with pytest.raises(ParseError, match="too large once decompressed"):
        parse_bytes(bomb, "gpx.gz")
    assert MAX_DECOMPRESSED_BYTES == 200 * 1024 * 1024


def test_gunzip_never_allocates_past_the_cap() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = comp.compress(b"\0" * (50 << 20)) + comp.flush()
    with pytest.raises(ParseError):
        container_mod.gunzip(bomb, limit=1 << 20)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_iter_zip_filters_members() -> None:
    one = gpx(trkpt(1, 1, ts(0)) + trkpt(1, 1.0001, ts(1)))
    data = _zip({"a/run.gpx": one, "__MACOSX/a/._run.gpx": b"junk", ".hidden.gpx": one, "notes.txt": b"x",
                 "b/ride.TCX": b"<TrainingCenterDatabase/>", "dir/": b""})
    assert [name for name, _ in iter_zip(data)] == ["a/run.gpx", "b/ride.TCX"]
    assert len(parse_bytes(_zip({"only.gpx": one, "readme.md": b"x"}), "zip")) == 2


def test_iter_zip_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    many = _zip({f"f{i}.gpx": b"x" for i in range(1001)})
    with pytest.raises(ParseError, match="more than 1000"):
        list(iter_zip(many))
    monkeypatch.setattr(container_mod, "MAX_DECOMPRESSED_BYTES", 1000)
    with pytest.raises(ParseError, match="too large"):
        list(iter_zip(_zip({"big.gpx": b"\0" * 5000})))


def test_iter_zip_counts_actual_bytes_not_header(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytearray(_zip({"big.gpx": b"\0" * 5000}))
    # Make both size fields in the central directory and the local header claim 10 bytes.
    for sig, off in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        pos = data.find(sig)
        data[pos + off:pos + off + 4] = (10).to_bytes(4, "little")
    monkeypatch.setattr(container_mod, "MAX_DECOMPRESSED_BYTES", 1000)
    with pytest.raises(ParseError):
        list(iter_zip(bytes(data)))


def test_corrupt_zip() -> None:
    with pytest.raises(ParseError, match="not a valid zip"):
        list(iter_zip(b"PK\x03\x04" + b"\x00" * 50))


# --------------------------------------------------------------------------- small helpers


def test_parse_times_matches_scalar_parser() -> None:
    samples = ["2010-04-02T10:27:53.51+02:00", "2018-05-14T14:54:21Z", "2018-05-14T14:54:21.1234567Z",
               "2018-05-14T14:54:21", "2018-05-14 14:54:21Z", "2018-05-14T14:54:21+0200", "2018-05-14T14:54:21-05",
               "2016-02-29T00:00:00Z", "2015-02-29T00:00:00Z", "2015-02-28T24:00:00Z", "garbage", None, "",
               " 2016-09-16T16:31:53.243Z \n", "2015-02-28T23:00:00.5-03:30"]
    many = samples * 12  # past SCALAR_BELOW: the vectorised decoder, which must agree with the scalar one
    assert len(many) >= timeparse.SCALAR_BELOW > len(samples)
    np.testing.assert_array_equal(parse_times(many), np.array([parse_time(s) for s in many]))
    fast = parse_times(samples)
    slow = np.array([parse_time(s) for s in samples])
    np.testing.assert_array_equal(fast, slow)
    assert fast[1] == datetime(2018, 5, 14, 14, 54, 21, tzinfo=UTC).timestamp()
    assert np.isnan(fast[8]) and np.isnan(fast[10])


@pytest.mark.parametrize(("raw", "sport"), [
    ("Running", "running"), ("running", "running"), ("Biking", "cycling"), ("Other", "other"),
    ("mountain biking", "cycling"), ("strength_training", "strength"), ("hiking", "hiking"),
    ("Walk", "walking"), ("lap_swimming", "swimming"), ("generic", "other"), ("9", "other"), (None, None),
    ("VirtualRide", "cycling"), ("virtual_ride", "virtual_ride"), ("e_biking", "e_bike_ride"),
    ("alpine_skiing", "alpine_skiing"), ("cross_country_skiing", "nordic_skiing"), ("Rowing", "rowing"),
    ("yoga", "yoga"), ("virtual run", "virtual_run"),
])
def test_normalize_sport(raw: str | None, sport: str | None) -> None:
    assert normalize_sport(raw) == sport


def test_running_cadence_convention() -> None:
    assert running_cadence_spm(np.array([85.0, 88.0, 0.0])).tolist() == [170.0, 176.0, 0.0]
    assert running_cadence_spm(np.array([170.0, 176.0])).tolist() == [170.0, 176.0]


# --------------------------------------------------------------------------- fuzz


def _fuzz_inputs() -> list[tuple[str, bytes]]:
    rng = random.Random(1234)
    seeds: list[tuple[str, bytes]] = []
    for row in ROWS:
        data = corpus_file(row["file"]).read_bytes()
        seeds.append((row["format"], data[:200_000]))
    seeds.append(("gpx", gpx("".join(trkpt(1, 1 + i * 1e-5, ts(i), "<ele>3</ele>") for i in range(50)))))
    cases: list[tuple[str, bytes]] = []
    for kind, data in seeds:
        for _ in range(6):
            cut = data[: rng.randrange(0, len(data) + 1)]
            cases.append((kind, cut))
            mutated = bytearray(data)
            for _ in range(rng.randrange(1, 20)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            cases.append((kind, bytes(mutated)))
        cases.append((kind, rng.randbytes(rng.randrange(0, 2000))))
        cases.append((f"{kind}.gz", gzip.compress(data, mtime=0)[: rng.randrange(1, 400)]))
    cases.append(("zip", _zip({"x.gpx": b"garbage", "y.fit": b"\0" * 40})[:-7]))
    return cases


FUZZ = _fuzz_inputs()


@pytest.mark.parametrize(("kind", "data"), FUZZ, ids=[f"{k}-{i}" for i, (k, _) in enumerate(FUZZ)])
def test_fuzz_only_parse_errors(kind: str, data: bytes) -> None:
    try:
        if kind == "zip":
            for name, content in iter_zip(data):
                normalize(parse_bytes(content, detect_type(name, content[:4096])))
        else:
            normalize(parse_bytes(data, kind))
    except ParseError as exc:
        assert str(exc)
        assert "Traceback" not in str(exc)
