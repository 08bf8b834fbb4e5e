"""The scanning GPX engine (gpxscan) against the streaming engine: identical results or a decline.

Every case compares what the engines hand to gpx.parse_gpx - point columns, times, metadata, the
creator and the first unreadable coordinate pair - and, end to end, the parsed Track or the error
message. Cases that must take the scanning path assert that it did not decline.
"""

from __future__ import annotations

import importlib.util
import math
import random
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from domain.algorithms.parsing import ParseError, gpxfast, gpxscan, normalize, parse_bytes, timeparse, xmlnative
from domain.algorithms.parsing import gpx as gpx_mod
from domain.algorithms.parsing.common import N_SLOTS
from domain.algorithms.parsing.gpx import _spec, parse_gpx
from domain.algorithms.parsing.timeparse import _parse_codes, parse_time, parse_time_codes
from domain.algorithms.parsing.xmlpoints import stream_points
from domain.algorithms.track import Track
from tests.support.corpus import corpus_file, manifest_rows
from tests.support.synthetic import synthetic_track, to_gpx

ROOT = Path(__file__).resolve().parents[4]
CORPUS_GPX = [corpus_file(r["file"]) for r in manifest_rows("gpx")]


def _bench_gpx(n: int) -> bytes:
    spec = importlib.util.spec_from_file_location("bench_parse", ROOT / "bench" / "bench_parse.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_gpx(n)


def ts(i: int, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return datetime.fromtimestamp(1_600_000_000 + i, UTC).strftime(fmt)


HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="edge" '
        'xmlns="http://www.topografix.com/GPX/1/1" xmlns:gpxtpx="http://www.garmin.com/xmlschemas/'
        'TrackPointExtension/v1" xmlns:ns3="urn:x" xmlns:pwr="urn:p">\n'
        "<metadata><name>Edge</name><time>2020-01-01T00:00:00Z</time></metadata>\n"
        "<trk><name>Track</name><type>running</type><trkseg>\n")
TAIL = "</trkseg></trk>\n</gpx>\n"


def doc(points: str, head: str = HEAD, tail: str = TAIL) -> bytes:
    return (head + points + tail).encode()


def pt(i: int, body: str | None = None, attrs: str | None = None, tag: str = "trkpt") -> str:
    lat, lon = f"{47 + i * 1e-4:.7f}", f"{8 + i * 1e-4:.7f}"
    attrs = f'lat="{lat}" lon="{lon}"' if attrs is None else attrs
    body = f"<ele>{400 + i % 9}.5</ele><time>{ts(i)}</time>" if body is None else body
    return f"<{tag} {attrs}>{body}</{tag}>\n" if attrs else f"<{tag}>{body}</{tag}>\n"


@pytest.fixture(autouse=True)
def _vectorised_paths_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_gpx leaves small files to the streaming engine; these tests compare the paths on small documents."""
    monkeypatch.setattr(gpx_mod, "SMALL_BYTES", 0)


def plain(n: int = 6) -> bytes:
    return doc("".join(pt(i) for i in range(n)))


def hr(v: object, prefix: str = "gpxtpx") -> str:
    return f"<extensions><{prefix}:TrackPointExtension><{prefix}:hr>{v}</{prefix}:hr></{prefix}:TrackPointExtension>" \
           f"</extensions>"


# Files the scanning path must read itself (it may not decline them).
SCANNED: dict[str, bytes] = {
    "plain": plain(),
    "bench": _bench_gpx(300),
    "missing_children": doc("".join(
        pt(i, "" if i % 5 == 0 else (f"<time>{ts(i)}</time>" if i % 3 else f"<ele>{i}</ele>" + hr(100 + i)))
        for i in range(20))),
    "extensions_any_prefix": doc("".join(pt(i, f"<time>{ts(i)}</time><extensions><ns3:hr>{120 + i}</ns3:hr>"
                                            f"<cadence>{80 + i}</cadence><pwr:PowerInWatts>{200 + i}"
                                            f"</pwr:PowerInWatts><gpxtpx:atemp>-{i}.5</gpxtpx:atemp><watts>9"
                                            f"</watts><heartrate>77</heartrate></extensions>") for i in range(8))),
    "first_value_wins": doc("".join(pt(i, f"<ele>x</ele><ele></ele><ele>{i}</ele><ele>99</ele><time>bad</time>"
                                       f"<time>{ts(i)}</time>{hr('n/a')}{hr(150 + i)}") for i in range(5))),
    "multi_trk_and_segments": doc(pt(0) + pt(1) + "</trkseg><trkseg>\n" + pt(2) + "</trkseg></trk>\n<trk><name>2"
                                  "</name><trkseg>" + pt(3) + pt(4)),
    "route_only": doc("".join(pt(i, tag="rtept") for i in range(4)), head=HEAD.replace("<trk><name>Track</name>"
                      "<type>running</type><trkseg>", "<rte>"), tail="</rte></gpx>"),
    "track_and_route": doc("".join(pt(i) for i in range(3)), tail=TAIL.replace(
        "</gpx>", "<rte>" + "".join(pt(9 + i, tag="rtept") for i in range(3)) + "</rte></gpx>")),
    "waypoints_after": doc("".join(pt(i) for i in range(3)), tail=TAIL.replace(
        "</gpx>", f'<wpt lat="1" lon="2"><ele>5</ele><time>{ts(99)}</time></wpt></gpx>')),
    "whitespace_layout": doc("".join(f'\r\n\t<trkpt lat="{47 + i}" lon="{8 + i}">\r\n\t\t<ele>{i}</ele>\n'
                                     f"  <time>{ts(i)}</time>  \n\t</trkpt >" for i in range(4))),
    "blank_values": doc("".join(pt(i, f"<ele> {i}.25 </ele><time>\n{ts(i)}\n</time>{hr(' 140 ')}")
                                for i in range(4))),
    "fractional_and_offsets": doc("".join(pt(i, f"<time>{t}</time>") for i, t in enumerate([
        "2020-05-01T10:00:00.5Z", "2020-05-01T12:00:01+02:00", "2020-05-01T10:00:02.123456789Z",
        "2020-05-01T10:00:03", "2020-05-01 10:00:04z", "2020-05-01T05:00:05-0500", "2020-02-30T10:00:06Z",
        "2049-05-01T10:00:07Z", "1850-05-01T10:00:08Z", "garbage-but-long-enough-text"]))),
    "lon_lat_order": doc("".join(pt(i, attrs=f'lon="{8 + i / 10}" lat="{47 + i / 10}"') for i in range(4))),
    "no_coordinates": doc("".join(pt(i, attrs="") for i in range(3)) + pt(3)),
    "odd_numbers": doc("".join(pt(i, attrs=f'lat="{la}" lon="{lo}"', body=f"<ele>{e}</ele><time>{ts(i)}</time>")
                               for i, (la, lo, e) in enumerate([
                                   ("-0.0", "-.5", "5."), ("+47.1", "1e-3", "1_000"), ("47.12345678901234567", "8",
                                                                                       "-0"),
                                   ("nan", "8", "inf"), ("47", "8", "١٢"), ("0047.50", "-008.25", "--1"),
                                   ("4.7.1", "8", ".")]))),
    "bad_coordinates": doc("".join(pt(i, attrs=f'lat="{la}" lon="8"') for i, la in
                                   enumerate(["47.0", "undefined", "x"]))),
    "all_bad_coordinates": doc("".join(pt(i, attrs='lat="undefined" lon="undefined"') for i in range(3))),
    "long_names": doc("".join(pt(i, f"<time>{ts(i)}</time><extensions><averyveryverylongprefixname:hr>{i + 90}"
                                    f"</averyveryverylongprefixname:hr><gpxtpx:TrackPointExtension>"
                                    f"<gpxtpx:cad>{i}</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions>")
                              for i in range(4))),
    "prefixed_points": doc("".join(pt(i, tag="g:trkpt") for i in range(3)),
                           head=HEAD.replace('xmlns:ns3="urn:x"', 'xmlns:ns3="urn:x" xmlns:g="urn:g"')),
    "comment_before_points": doc("".join(pt(i) for i in range(3)), head=HEAD.replace(
        "<trk>", '<!-- <trkpt lat="1" lon="1"></trkpt> --><?pi <trkpt lat="2" lon="2"> ?><trk>')),
    "entity_outside_points": doc("".join(pt(i) for i in range(3)), head=HEAD.replace("<name>Edge", "<name>A &amp; B")),
    # Markup between and inside points, outside any value read (ExpertGPS writes <cmt><![CDATA[…]]></cmt>).
    "comment_in_segment": plain().replace(b"</trkpt>\n<trkpt", b"</trkpt><!-- x -->\n<trkpt", 1),
    "pi_after_points": plain().replace(b"</gpx>", b"</gpx><?pi x?>"),
    "cdata_in_unread_element": plain().replace(b"</time></trkpt>",
                                               b"</time><cmt><![CDATA[a <b> & </c>]]></cmt></trkpt>"),
    "cdata_between_tracks": plain().replace(b"</trkpt>\n<trkpt", b"</trkpt></trkseg></trk><trk><name><![CDATA[<trkpt "
                                            b'lat="1" lon="2">]]></name><trkseg><!-- <ele>9</ele> -->\n<trkpt', 1),
    # Regions that look nested (only the outer one is markup), empty ones, and closers split across them.
    "markup_inside_markup": plain().replace(b"</time></trkpt>", b"</time><cmt><![CDATA[<!-- <?x]]></cmt><desc><!-- "
                                            b"<![CDATA[ ]] - --><?p <!-- ?></desc></trkpt>"),
    "empty_markup": plain().replace(b"</time></trkpt>", b"</time><cmt><![CDATA[]]><!----><?p?></cmt></trkpt>"),
    "closer_lookalikes": plain().replace(b"</time></trkpt>", b"</time><cmt><![CDATA[]>]]]><!-- - -> --><?p ? >?>"
                                         b"</cmt></trkpt>"),
    "long_value_texts": doc(pt(0, f"<ele>{'0' * 40}12.5</ele><time>{ts(0)}   {' ' * 40}</time>") + pt(1)),
}

# Shapes the scanning path leaves to gpxfast / the streaming engine (results must still agree).
DECLINED: dict[str, bytes] = {
    "single_quotes": plain().replace(b'"', b"'"),
    "extra_attribute": plain().replace(b"<trkpt lat", b'<trkpt id="1" lat'),
    "newline_in_point_tag": plain().replace(b'" lon=', b'"\n lon='),
    "self_closing_point": plain().replace(b"</trkseg>", b'<trkpt lat="1" lon="2"/></trkseg>'),
    "nested_point": doc(pt(0, f"<time>{ts(0)}</time>{pt(1)}")),
    "comment_in_value": plain().replace(b"<ele>", b"<ele><!-- x -->", 1),
    "cdata_value": plain().replace(b"<ele>", b"<ele><![CDATA[", 1).replace(b".5</ele>", b".5]]></ele>", 1),
    "char_reference_value": plain().replace(b"<ele>4", b"<ele>&#52;", 1),
    "entity_in_coordinate": plain().replace(b'lat="47', b'lat="&#52;7', 1),
    "value_with_attribute": plain().replace(b"<ele>", b'<ele unit="m">', 1),
    "value_with_child": plain().replace(b"<ele>", b"<ele><b/>", 1),
    "self_closing_value": plain().replace(b"<ele>400.5</ele>", b"<ele/>", 1),
    "blank_in_value_tag": plain().replace(b"<ele>", b"<ele >", 1),
    "latin1": plain().replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"').replace(b"Edge", "Édge".encode("latin-1")),
    "utf16": plain().decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
    "empty_track": doc(""),
    "no_points": doc("", tail="</gpx>\n").replace(b"<trk><name>Track</name><type>running</type><trkseg>\n", b""),
    "truncated": plain()[:-40],
    "malformed": plain().replace(b"</ele>", b"</elf>", 1),
    "wrong_root": plain().replace(b"<gpx ", b"<gpxx ").replace(b"</gpx>", b"</gpxx>"),
    "doctype": b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "b">]>' + plain()[plain().index(b"<gpx "):],
    "undefined_entity": plain().replace(b"<ele>4", b"<ele>&foo;4", 1),
    "very_long_tag_name": plain().replace(b"<ele>", b"<x" + b"y" * 40 + b">", 1).replace(
        b"</ele>", b"</x" + b"y" * 40 + b">", 1),
    "long_coordinate": plain().replace(b'lat="47', b'lat="0000000000000000000000047', 1),
}


def _results(data: bytes) -> tuple[object, object]:
    """(scanning engine's result or None, streaming engine's result or the ParseError message), each as
    a comparable structure."""
    c1: list[str] = []
    scanned = gpxscan.parse(data, _spec(c1))
    c2: list[str] = []
    try:
        streamed = stream_points(data, _spec(c2))
    except ParseError as exc:
        return scanned, str(exc)
    return (None if scanned is None else (scanned, c1)), (streamed, c2)


def _assert_same_engine_output(data: bytes) -> bool:
    """Compare the engines; True when the scanning path read the file."""
    scanned, streamed = _results(data)
    if scanned is None:
        return False
    assert not isinstance(streamed, str), f"the scanning path accepted a file the streaming engine rejects: {streamed}"
    (fast, c1), (slow, c2) = scanned, streamed  # type: ignore[misc]
    assert c1 == c2
    assert_same_points(fast, slow)
    return True


def assert_same_points(fast: Any, slow: Any) -> None:
    """Two engines' results (metadata, bad-coordinate report, every sink's times and slots) are identical."""
    assert fast.meta == slow.meta
    assert fast.bad_coords == slow.bad_coords
    assert len(fast.sinks) == len(slow.sinks)
    for a, b in zip(fast.sinks, slow.sinks, strict=True):
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.times(), b.times())
        for slot in range(N_SLOTS):
            np.testing.assert_array_equal(a.column(slot), b.column(slot), err_msg=f"slot {slot}")
            # -0.0 and 0.0 compare equal: the sign must match too
            assert np.array_equal(np.signbit(a.column(slot)), np.signbit(b.column(slot))), f"sign of slot {slot}"


def _track_or_message(data: bytes, *, fast: bool) -> Track | str:
    try:
        return parse_gpx(data, fast=fast)
    except ParseError as exc:
        return str(exc)


def _assert_same_end_to_end(data: bytes) -> None:
    assert_same_tracks(_track_or_message(data, fast=True), _track_or_message(data, fast=False))


def assert_same_tracks(a: Track | str, b: Track | str) -> None:
    """Two parses of one file give the same error message, or the same track."""
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for c in ("time", "lat", "lon", "ele", "hr", "cadence", "power", "temp"):
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)
    assert (a.name, a.sport, a.device, a.laps, a.totals) == (b.name, b.sport, b.device, b.laps, b.totals)


@pytest.mark.parametrize("name", SCANNED)
def test_scanned_shapes_match_streaming_engine(name: str) -> None:
    data = SCANNED[name]
    assert _assert_same_engine_output(data), "the scanning path declined"
    _assert_same_end_to_end(data)


@pytest.mark.parametrize("name", DECLINED)
def test_declined_shapes_fall_back_with_identical_results(name: str) -> None:
    data = DECLINED[name]
    assert gpxscan.parse(data, _spec([])) is None
    _assert_same_end_to_end(data)


def test_values_of_edge_cases() -> None:
    """Spot checks of what the comparisons above take for granted."""
    t = parse_bytes(SCANNED["extensions_any_prefix"], "gpx")
    assert t.hr.tolist()[:2] == [120, 121] and t.power.tolist()[:2] == [200, 201]
    assert t.temp.tolist()[:2] == [-0.5, -1.5]
    first = parse_bytes(SCANNED["first_value_wins"], "gpx")
    assert first.ele.tolist() == [0, 1, 2, 3, 4] and first.hr.tolist() == [150, 151, 152, 153, 154]
    assert np.isnan(first.time).all()  # the first <time> wins even when unreadable
    odd = parse_bytes(SCANNED["odd_numbers"], "gpx")
    assert str(odd.lat[0]) == "-0.0" and odd.lon[0] == -0.5 and odd.ele[0] == 5.0
    assert odd.lat[1] == 47.1 and odd.lon[1] == 0.001 and odd.ele[1] == 1000.0
    assert odd.lat[2] == float("47.12345678901234567")
    with pytest.raises(ParseError, match="invalid coordinates"):
        parse_bytes(SCANNED["all_bad_coordinates"], "gpx")


@pytest.mark.parametrize("path", CORPUS_GPX, ids=[p.name for p in CORPUS_GPX])
def test_corpus_files(path: Path) -> None:
    data = path.read_bytes()
    _assert_same_engine_output(data)
    _assert_same_end_to_end(data)


def test_corpus_device_exports_take_the_scanning_path() -> None:
    scanned = [p.name for p in CORPUS_GPX if gpxscan.parse(p.read_bytes(), _spec([])) is not None]
    assert len(scanned) >= 5, scanned


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_tracks(seed: int) -> None:
    track = synthetic_track(seed=seed, n_points=600, with_cadence=True, with_power=True, with_temp=True,
                            interval_s=0.5 if seed == 2 else 1.0, pauses=[(100, 160)])
    data = to_gpx(track)
    assert _assert_same_engine_output(data)
    _assert_same_end_to_end(data)
    np.testing.assert_allclose(parse_bytes(data, "gpx").hr, np.round(track.hr), atol=0.51)


def test_bench_file_end_to_end() -> None:
    data = _bench_gpx(3600)
    assert _assert_same_engine_output(data)
    assert len(normalize(parse_bytes(data, "gpx"))) == 3600


@pytest.mark.parametrize("chunk", [64, 300, 1000])
def test_slices_give_the_same_points(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(gpxscan, "CHUNK_BYTES", chunk)
    for name in ("bench", "missing_children", "multi_trk_and_segments", "track_and_route", "prefixed_points",
                 "bad_coordinates", "no_coordinates"):
        assert _assert_same_engine_output(SCANNED[name]), name


def test_point_limit_is_left_to_the_usual_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import domain.algorithms.parsing.common as common

    monkeypatch.setattr(common, "MAX_POINTS", 10)
    monkeypatch.setattr(common, "TIME_BATCH", 4)  # the other engines check the limit once per batch
    monkeypatch.setattr(gpxfast, "MAX_POINTS", 10)
    monkeypatch.setattr(gpxfast, "_BATCH", 4)
    monkeypatch.setattr(gpxscan, "CHUNK_BYTES", 300)
    many = doc("".join(pt(i) for i in range(20)))
    assert gpxscan.parse(many, _spec([])) is None
    with pytest.raises(ParseError, match="more than 10"):
        parse_gpx(many)
    assert gpxscan.parse(doc("".join(pt(i) for i in range(10))), _spec([])) is not None


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
    b'<gpx><trk><name>&lol2;</name><trkseg><trkpt lat="1" lon="1"><time>2020-01-01T00:00:00Z</time></trkpt>'
    b"</trkseg></trk></gpx>",
    b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><gpx><trk><trkseg>'
    b'<trkpt lat="1" lon="1"><ele>&xxe;</ele></trkpt></trkseg></trk></gpx>',
    b'<!DOCTYPE gpx SYSTEM "http://example.com/gpx.dtd"><gpx><trk><trkseg><trkpt lat="1" lon="1"></trkpt>'
    b"</trkseg></trk></gpx>",
])
def test_hostile_documents_are_rejected(payload: bytes) -> None:
    assert gpxscan.parse(payload, _spec([])) is None
    with pytest.raises(ParseError, match="document type declaration"):
        parse_bytes(payload, "gpx")


def _mutations(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    base = [SCANNED["bench"], SCANNED["missing_children"], SCANNED["extensions_any_prefix"], SCANNED["odd_numbers"]]
    snippets = [b"<", b">", b"/", b'"', b"'", b"&", b"&amp;", b"<!-- c -->", b"<?p?>", b"<![CDATA[x]]>", b" ",
                b"\n", b"-", b".", b"9", b"\xc3\xa9", b"\xff", b"<trkpt>", b"</trkpt>", b'<trkpt lat="1" lon="2">',
                b"<ele>", b"</ele>", b"<time>", b"<hr>5</hr>", b"<x:hr/>", b"lat", b":", b"\0"]
    out = []
    for _ in range(120):
        data = bytearray(rng.choice(base))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data))
            action = rng.randrange(4)
            if action == 0:
                data[at] = rng.randrange(256)
            elif action == 1:
                data[at:at] = rng.choice(snippets)
            elif action == 2:
                del data[at:at + rng.randrange(1, 30)]
            else:
                data = data[:at]
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_fuzzed_files_agree_with_streaming_engine(seed: int) -> None:
    for data in _mutations(seed):
        _assert_same_engine_output(data)
        _assert_same_end_to_end(data)
        try:
            normalize(parse_bytes(data, "gpx"))
        except ParseError as exc:
            assert str(exc)


def test_decimals_are_exactly_float(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpxscan, "_MAX_PATTERNS", 10_000)  # every layout of this mixed bag in numpy
    rng = random.Random(7)
    texts = []
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 19)))
        dot = rng.randrange(len(digits) + 1)
        text = digits[:dot] + ("." if rng.random() < 0.8 else "") + digits[dot:]
        texts.append(("-" if rng.random() < 0.3 else "") + text)
    texts += ["0", "-0", "-0.0", ".5", "5.", "-.5", ".", "-", "", "1.2.3", "1-2", "+1", " 1", "1e5", "nan",
              "999999999999999", "9999999999999999", "0.000000000000001", "123456789.012345"]
    raw = [t.encode() for t in texts]
    width = 24
    matrix = np.zeros((len(raw), width), dtype=np.uint8)
    for i, t in enumerate(raw):
        matrix[i, :min(len(t), width)] = np.frombuffer(t[:width], dtype=np.uint8)
    value, ok = gpxscan._decimals(matrix, np.array([len(t) for t in raw]))
    for t, v, good in zip(texts, value.tolist(), ok.tolist(), strict=True):
        if good:
            expected = float(t)
            assert v == expected and np.signbit(v) == np.signbit(expected), t
    # Exactly the plain shapes are converted in numpy: up to 18 digits by integer arithmetic, longer ones by
    # numpy's correctly rounded string cast.
    plain = np.array([len(t.encode()) <= width and t.count(".") <= 1 and t.lstrip("-").replace(".", "")
                      .isdigit() and t.isascii() and t.count("-") <= t.startswith("-") for t in texts])
    np.testing.assert_array_equal(ok, plain)


@pytest.mark.parametrize("places", range(19))
def test_long_mantissas_divide_as_python_does(places: int) -> None:
    # Integers above 2**53 (16-18 digit coordinates) are not exact doubles: the quotient is checked with integers.
    # Python's int / int is correctly rounded, so it is the reference; near-halfway quotients are included.
    rng = random.Random(places)
    mantissas = [rng.randrange(1 << 53, 10**18) for _ in range(3000)] + [(1 << 53) + k for k in range(50)]
    for _ in range(2000):
        x = rng.uniform(1.0, 2.0**60 / 10**places)
        halfway = Fraction(x) + Fraction(float(np.spacing(x))) / 2
        for n in (math.floor(halfway * 10**places), math.ceil(halfway * 10**places)):
            if 1 << 53 <= n < 10**18:
                mantissas.append(n)
    value, ok = gpxscan._divide_exactly(np.array(mantissas, dtype=np.int64), np.full(len(mantissas), places))
    expected = [n / 10**places for n in mantissas]
    assert ok.mean() > 0.99
    assert [v for v, good in zip(value.tolist(), ok.tolist(), strict=True) if good] == \
        [e for e, good in zip(expected, ok.tolist(), strict=True) if good]


def test_time_codes_plain_layout_matches_general_parser() -> None:
    texts = [ts(i * 997_331) for i in range(300)] + ["1850-01-01T00:00:00Z", "2099-12-31T23:59:59Z",
                                                     "9999-12-31T23:59:59Z", "2024-02-29T12:00:00Z"]
    codes = np.zeros((len(texts), 24), dtype=np.uint8)
    for i, t in enumerate(texts):
        codes[i, :len(t)] = np.frombuffer(t.encode(), dtype=np.uint8)
    fast, ok = parse_time_codes(codes)
    assert ok.all()
    np.testing.assert_array_equal(fast, _parse_codes(codes.astype(np.int32))[0])
    np.testing.assert_array_equal(fast, [parse_time(t) for t in texts])  # also years outside 1901-2038
    bad = codes.copy()
    bad[0, :20] = np.frombuffer(b"2023-02-29T00:00:00Z", dtype=np.uint8)  # no such day: the general path
    fast, ok = parse_time_codes(bad)
    assert not ok[0] and ok[1:].all()


def test_gpx_routes_to_the_scanning_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlnative, "_xmlscan", None)  # the order behind the C engine (as without a compiler)
    calls: list[str] = []
    monkeypatch.setattr(gpxfast, "parse", lambda *a, **k: calls.append("gpxfast"))
    parse_gpx(SCANNED["bench"])
    assert calls == []
    with pytest.raises(ParseError):
        parse_gpx(DECLINED["single_quotes"].replace(b"<trkpt", b"<trkptx").replace(b"</trkpt", b"</trkptx"))
    assert calls == ["gpxfast"]


def _code_matrix(texts: list[str], width: int = 40) -> np.ndarray:
    codes = np.zeros((len(texts), width), dtype=np.uint8)
    for i, t in enumerate(texts):
        codes[i, :len(t)] = np.frombuffer(t.encode(), dtype=np.uint8)
    return codes


@pytest.mark.parametrize("places", [0, 1, 3, 6])
@pytest.mark.parametrize("zone", ["Z", "z", "+02:00", "-05:30", "+00:00", "-00:00", "+23:59"])
def test_time_codes_fixed_layouts_match_general_parser(zone: str, places: int) -> None:
    rng = random.Random(f"{zone}{places}")
    texts = []
    for _ in range(400):  # separators T/t/space, fraction marks . and ,
        base = ts(rng.randrange(-2_000_000_000, 2_500_000_000), "%Y-%m-%d" + rng.choice("Tt ") + "%H:%M:%S")
        digits = "".join(rng.choice("0123456789") for _ in range(places))
        texts.append(f"{base}{rng.choice('.,')}{digits}{zone}" if places else base + zone)
    texts += ["2024-02-29T23:59:59" + ("." + "9" * places if places else "") + zone]
    codes = _code_matrix(texts)
    assert timeparse._parse_fixed_layout(codes, len(texts[0])) is not None  # the layouts this test is about
    fast, ok = parse_time_codes(codes)
    assert ok.all()
    assert fast.tobytes() == _parse_codes(codes.astype(np.int32))[0].tobytes()
    np.testing.assert_array_equal(fast, [parse_time(t) for t in texts])
    mixed = _code_matrix([*texts[:20], "2023-01-01T00:00:00.25+01:00"])  # two lengths: the general decoder
    assert parse_time_codes(mixed)[0].tobytes() == _parse_codes(mixed.astype(np.int32))[0].tobytes()


@pytest.mark.parametrize("odd", ["2023-02-29T00:00:00.5+01:00", "2023-01-01T24:00:00.5Z", "2023-01-01T00:00:00.Z",
                                 "2023-01-01T00:00:00.5+24:00", "2023-01-01T00:00:00.5+0100",
                                 "2023-01-01T00:00:00.5+01", "2023-01-01T00:00:00.5", "2023-01-01T00:00:00.5x01:00",
                                 "2023-01-01T00:00:60.1Z", "2023-01-01T00:00:00.a1Z", "2023-01-01T00:00:00.1234567Z"])
def test_time_codes_fixed_layouts_leave_odd_rows_to_the_general_parser(odd: str) -> None:
    texts = [f"2023-01-01T00:00:{i % 60:02d}.{'2' * max(1, len(odd) - 26)}+01:00" for i in range(20)] + [odd]
    codes = _code_matrix(texts)
    fast, ok = parse_time_codes(codes)
    slow, slow_ok = _parse_codes(codes.astype(np.int32))
    assert ok.tolist() == slow_ok.tolist()
    assert fast[ok].tobytes() == slow[slow_ok].tobytes()
    for k in np.flatnonzero(~ok):
        fast[k] = parse_time(texts[k])
    np.testing.assert_array_equal(fast, [parse_time(t) for t in texts])
