"""The C engine (xmlnative) against the Python streaming engine it mirrors: same points, values, times, metadata,
bad-coordinate report and errors, on edge-case, corpus, fuzzed and large documents."""

from __future__ import annotations

import math
import random
import shutil
import sysconfig
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from domain.algorithms.parsing import ParseError, common, parse_bytes, xmlnative
from domain.algorithms.parsing import gpx as gpx_mod
from domain.algorithms.parsing import tcx as tcx_mod
from domain.algorithms.parsing.gpx import parse_gpx
from domain.algorithms.parsing.tcx import parse_tcx
from domain.algorithms.parsing.timeparse import parse_times
from domain.algorithms.parsing.xmlpoints import XmlSpec, stream_points
from domain.algorithms.track import Track
from tests.domain.algorithms.parsing.test_gpxscan import (
    DECLINED,
    SCANNED,
    _mutations,
    assert_same_points,
    assert_same_tracks,
    doc,
    pt,
)
from tests.support.corpus import corpus_file, manifest_rows

#: The extension builds wherever a C compiler is (setup.py); on a machine with Python alone, the pure-Python engines
#: read every file and these comparisons have nothing to compare.
_COMPILER = (sysconfig.get_config_var("CC") or "cc").split()[0]
_NO_COMPILER = not xmlnative.available() and shutil.which(_COMPILER) is None
pytestmark = pytest.mark.skipif(_NO_COMPILER, reason=f"no C compiler ({_COMPILER}): the C engine is not built")

CORPUS = {kind: [corpus_file(r["file"]) for r in manifest_rows(kind)] for kind in ("gpx", "tcx")}
#: What the C engine leaves to the Python engines (encodings, DTDs, errors); it reads every other shape.
#: The edge-case documents the C engine leaves to the Python engines (the malformed ones it reports itself).
NATIVE_DECLINES = {"latin1", "utf16", "wrong_root", "doctype"}


def test_the_extension_is_built() -> None:
    """`pip install` builds it (setup.py) wherever a C compiler is; without it every file is read by the Python
    engines, ~2-4x slower. Skipped (above) only on a machine with no compiler at all."""
    assert xmlnative.available(), "domain/algorithms/parsing/_xmlscan.c was not compiled: run `make install`"


def _gpx_spec() -> tuple[XmlSpec, list[str]]:
    creator: list[str] = []
    return gpx_mod._spec(creator), creator


def _tcx_spec() -> tuple[XmlSpec, tuple[list[str], list[float]]]:
    sports: list[str] = []
    laps: list[float] = []
    return tcx_mod._spec(sports, laps), (sports, laps)


def _scan_or_message(data: bytes, spec: XmlSpec) -> xmlnative.NativeResult | str | None:
    try:
        return xmlnative.scan(data, spec)
    except ParseError as exc:
        return str(exc)


def _same(data: bytes, kind: str = "gpx") -> bool:
    """Compare the engines on one document; True when the C engine read it (or reported the error itself)."""
    make = _gpx_spec if kind == "gpx" else _tcx_spec
    spec, native_hooks = make()
    native = _scan_or_message(data, spec)
    spec2, stream_hooks = make()
    try:
        streamed = stream_points(data, spec2)
    except ParseError as exc:
        if isinstance(native, str):
            assert native == str(exc)
            return True
        assert native is None, f"the C engine accepted a document the streaming engine rejects: {exc}"
        return False
    assert not isinstance(native, str), f"the C engine rejected a document the streaming engine reads: {native}"
    if native is None:
        return False
    assert native_hooks == stream_hooks
    assert_same_points(native, streamed)
    return True


def _track_or_message(data: bytes, kind: str, *, fast: bool) -> Track | str:
    try:
        return parse_gpx(data, fast=fast) if kind == "gpx" else parse_tcx(data, fast=fast)
    except ParseError as exc:
        return str(exc)


def _same_end_to_end(data: bytes, kind: str = "gpx") -> None:
    assert_same_tracks(_track_or_message(data, kind, fast=True), _track_or_message(data, kind, fast=False))


@pytest.mark.parametrize("name", [*SCANNED, *DECLINED])
def test_edge_case_documents(name: str) -> None:
    data = SCANNED.get(name, DECLINED.get(name))
    assert data is not None
    assert _same(data) == (name not in NATIVE_DECLINES)
    _same_end_to_end(data)


@pytest.mark.parametrize("path", CORPUS["gpx"] + CORPUS["tcx"], ids=lambda p: Path(p).name)
def test_corpus_files(path: Path) -> None:
    kind = path.suffix.lstrip(".")
    data = path.read_bytes()
    _same(data, kind)
    _same_end_to_end(data, kind)


def test_corpus_files_take_the_c_engine() -> None:
    read = [p.name for kind, paths in CORPUS.items() for p in paths
            if _scan_or_message(p.read_bytes(), (_gpx_spec if kind == "gpx" else _tcx_spec)()[0]) is not None]
    assert len(read) >= 10, read


@pytest.mark.parametrize("seed", range(5))
def test_fuzzed_documents(seed: int) -> None:
    for data in _mutations(seed):
        _same(data)
        _same_end_to_end(data)


TCX_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase xmlns="urn:tcx" xmlns:ns3="urn:x">'
            '<Activities><Activity Sport="Biking"><Id>2020-01-01T00:00:00Z</Id>')
TCX_TAIL = ("</Activity></Activities><Author><Name>Garmin Connect</Name></Author>"
            "<Courses><Course><Name>Loop &amp; back</Name></Course></Courses></TrainingCenterDatabase>")


def _tcx_point(i: int, extra: str = "") -> str:
    return (f"<Trackpoint><Time>2020-01-01T00:00:{i:02d}.{i}Z</Time><Position><LatitudeDegrees>47.{i}"
            f"</LatitudeDegrees><LongitudeDegrees>8.{i}</LongitudeDegrees></Position><AltitudeMeters>4{i}0"
            f"</AltitudeMeters><DistanceMeters>{i * 3.5}</DistanceMeters><HeartRateBpm><Value>1{i}0</Value>"
            f"</HeartRateBpm><Extensions><ns3:TPX><ns3:Watts>2{i}</ns3:Watts><ns3:RunCadence>8{i}"
            f"</ns3:RunCadence></ns3:TPX></Extensions>{extra}</Trackpoint>")


TCX_DOCS = {
    "laps_and_names": TCX_HEAD + "".join(
        f'<Lap StartTime="2020-01-01T00:0{k}:00Z"><Track>{"".join(_tcx_point(i) for i in range(5))}</Track></Lap>'
        for k in range(3)) + "<Creator><Name>Edge 520</Name></Creator>" + TCX_TAIL,
    "first_value_wins": TCX_HEAD + "<Lap><Track>" + "".join(
        _tcx_point(i, "<Time>2021-01-01T00:00:00Z</Time><AltitudeMeters>x</AltitudeMeters>") for i in range(4))
    + "</Track></Lap>" + TCX_TAIL,
    "no_positions_treadmill": TCX_HEAD + "<Lap><Track>" + "".join(
        f"<Trackpoint><Time>2020-01-01T00:00:0{i}Z</Time><DistanceMeters>{i * 2.75}</DistanceMeters></Trackpoint>"
        for i in range(8)) + "</Track></Lap>" + TCX_TAIL,
    "comments_cdata_entities_in_values": TCX_HEAD + "<Lap><Track>" + "".join(
        f"<Trackpoint><Time><![CDATA[2020-01-01T00:00:0{i}Z]]></Time><AltitudeMeters>1<!-- c -->{i}&#46;5"
        f"</AltitudeMeters><HeartRateBpm><Value> 1{i}0 </Value></HeartRateBpm></Trackpoint>" for i in range(5))
    + "</Track></Lap>" + TCX_TAIL,
    "sport_twice_and_lap_without_time": TCX_HEAD.replace("<Activity ", '<Activity Foo="1" ') + "<Lap Foo='x'><Track>"
    + _tcx_point(1) + '</Track></Lap><Activity Sport="Running"/>' + TCX_TAIL,
}


@pytest.mark.parametrize("name", TCX_DOCS)
def test_tcx_documents(name: str) -> None:
    data = TCX_DOCS[name].encode()
    assert _same(data, "tcx")
    _same_end_to_end(data, "tcx")


def test_tcx_values() -> None:
    track = parse_tcx(TCX_DOCS["laps_and_names"].encode())
    assert track.sport == "cycling" and track.device == "Edge 520" and track.name == "Loop & back"
    assert len(track.laps) == 3 and track.totals["distance_m"] == 14.0
    assert track.hr.tolist()[:2] == [100.0, 110.0] and track.power.tolist()[:2] == [20.0, 21.0]
    odd = parse_tcx(TCX_DOCS["comments_cdata_entities_in_values"].encode())
    assert odd.ele.tolist() == [10.5, 11.5, 12.5, 13.5, 14.5] and odd.hr.tolist()[0] == 100.0


def _points_doc(values: list[str], times: list[str] | None = None) -> bytes:
    times = times or [f"2020-01-01T00:00:{i % 60:02d}Z" for i in range(len(values))]
    return doc("".join(pt(i, attrs=f'lat="{v}" lon="{v}"', body=f"<ele>{v}</ele><time>{t}</time>")
                       for i, (v, t) in enumerate(zip(values, times, strict=True))))


def test_decimals_round_exactly_as_float() -> None:
    """Plain decimals are converted in C (exact fast path, 128-bit proof); each must be float()'s double."""
    rng = random.Random(11)
    texts = []
    for _ in range(6000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 22)))
        at = rng.randrange(len(digits) + 1)
        text = digits[:at] + "." + digits[at:] if rng.random() < 0.85 else digits
        texts.append(rng.choice(["", "-", "+"]) + text)
    for _ in range(1500):  # coordinates as phones write them, and decimals halfway between two doubles
        x = rng.uniform(-180, 180)
        texts += [repr(x), f"{x:.17f}", f"{x:.19f}"]
        m, e = rng.randrange(2**52, 2**53), rng.randrange(-40, 8)
        texts.append(format((Decimal(math.ldexp(m, e)) + Decimal(math.ldexp(m + 1, e))) / 2, "f")[:22])
    texts += ["0", "-0", "-0.000", "5.", ".5", "-.5", "00.50", "1e3", "1_000", "inf", "-nan", " 7 ", "١٢", ".", "-",
              "+", "1.2.3", "9" * 19, "9" * 20, "0." + "0" * 25 + "1", "18446744073709551615", "18446744073709551616"]
    data = _points_doc(texts)
    assert _same(data)
    track = xmlnative.scan(data, _gpx_spec()[0])
    assert track is not None
    ele = track.sinks[0].column(2)
    for text, value in zip(texts, ele.tolist(), strict=True):
        try:
            expected = float(text)
        except ValueError:
            expected = math.nan
        assert (value == expected and math.copysign(1, value) == math.copysign(1, expected)) or \
            (math.isnan(value) and math.isnan(expected)), text


def test_time_layouts_match_parse_times() -> None:
    rng = random.Random(3)
    texts = []
    start = datetime(1995, 1, 1, tzinfo=UTC)
    for _ in range(3000):
        t = start + timedelta(seconds=rng.randrange(0, 1_200_000_000), microseconds=rng.randrange(10**6))
        base = t.strftime(rng.choice(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dt%H:%M:%S"]))
        frac = rng.choice(["", "." + f"{t.microsecond:06d}"[:rng.randrange(1, 7)], ",5", ".123456789", "."])
        zone = rng.choice(["Z", "z", "", "+02:00", "-05:30", "+0100", "-03", "+24:00", "+01:60", " Z"])
        texts.append(rng.choice(["", " ", "\n"]) + base + frac + zone + rng.choice(["", " ", "\t"]))
    texts += ["", " ", "2020-02-29T00:00:00Z", "2021-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2020-13-01T00:00:00Z",
              "2020-01-01T24:00:00Z", "2020-01-01T00:00:60Z", "2020-01-01T00:00Z", "2020-01-01",
              "２０２０-01-01T00:00:00Z", "2020-01-01T00:00:00\u00a0", "garbage"]
    data = _points_doc(["1"] * len(texts), texts)
    assert _same(data)
    native = xmlnative.scan(data, _gpx_spec()[0])
    assert native is not None
    np.testing.assert_array_equal(native.sinks[0].times(), parse_times(texts))


def test_late_times_are_converted_in_batches() -> None:
    """More than one batch (65,536) of times the C decoder leaves to Python, over more than one 1 MB feed."""
    n = 70_000
    times = [f"2020-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}" for i in range(n)]  # no seconds: parse_time
    data = _points_doc([str(i % 90) for i in range(n)], times)
    assert len(data) > 2 << 20
    assert _same(data)


def test_malformed_documents_are_reported_as_the_python_engine_words_them() -> None:
    """The C engine feeds expat the same 1 MB chunks as xmlsafe.run, the last one as final where xmlsafe.run follows it
    with an empty final call: a document that is not well-formed must fail at the same line and column, with the same
    sentence. Checked around and across the chunk boundaries of a 2.5 MB document, for a cut-off end and a bad byte."""
    chunk = 1 << 20
    data = _points_doc([str(i % 90) for i in range(32_000)])
    assert len(data) > 2 * chunk + 4096
    cuts = [chunk - 1, chunk, chunk + 1, 2 * chunk, len(data) // 2, len(data) - 7, len(data) - 2]  # "</gpx>\n" ends it
    bad_bytes = [chunk - 1, chunk, 2 * chunk + 3, len(data) - 9]
    documents = [data[:cut] for cut in cuts] + [data[:at] + b"<" + data[at + 1:] for at in bad_bytes]
    for document in documents:
        with pytest.raises(ParseError) as native:
            xmlnative.scan(document, _gpx_spec()[0])
        with pytest.raises(ParseError) as streamed:
            stream_points(document, _gpx_spec()[0])
        assert str(native.value) == str(streamed.value)
        assert _track_or_message(document, "gpx", fast=True) == str(streamed.value)


def test_point_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "MAX_POINTS", 10)
    many = doc("".join(pt(i) for i in range(11)))
    with pytest.raises(ParseError, match="more than 10"):
        xmlnative.scan(many, _gpx_spec()[0])
    with pytest.raises(ParseError, match="more than 10"):
        parse_gpx(many)
    assert xmlnative.scan(doc("".join(pt(i) for i in range(10))), _gpx_spec()[0]) is not None


def test_a_raising_hook_is_left_to_the_python_engine() -> None:
    def hook(tag: str, attrs: dict[str, str]) -> None:
        raise ParseError(f"no <{tag}>")

    spec = XmlSpec(label="GPX", root="gpx", point_tags={"trkpt": 0}, fields=gpx_mod.POINT_FIELDS, on_element=hook)
    assert xmlnative.scan(SCANNED["plain"], spec) is None
    with pytest.raises(ParseError, match="no <gpx>"):
        stream_points(SCANNED["plain"], spec)


def test_the_python_engines_failure_on_a_pathological_nesting_is_kept() -> None:
    """Nested points make the streaming engine pop its element stack once too often (an IndexError, reported as
    'could not be read'); the C engine declines the document rather than read it differently."""
    nested = doc("<trkpt><ele><trkpt></trkpt></ele></trkpt><trkpt><ele><trkpt></trkpt></ele></trkpt>",
                 head='<gpx><trkseg>', tail="</trkseg></gpx>")
    nested = nested.replace(b"<gpx><trkseg>", b"<gpx>").replace(b"</trkseg></gpx>", b"</gpx>")
    assert xmlnative.scan(nested, _gpx_spec()[0]) is None
    with pytest.raises(ParseError, match="IndexError"):
        parse_bytes(nested, "gpx")


def test_no_memory_is_kept_between_files() -> None:
    data = SCANNED["odd_numbers"] + b""  # bad coordinates, odd numbers: every branch that allocates
    tcx = TCX_DOCS["laps_and_names"].encode()
    for _ in range(30):
        xmlnative.scan(data, _gpx_spec()[0])
        xmlnative.scan(tcx, _tcx_spec()[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(300):
            xmlnative.scan(data, _gpx_spec()[0])
            xmlnative.scan(tcx, _tcx_spec()[0])
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64_000, grown


@pytest.mark.parametrize(("prolog", "read"), [
    ('<?xml version="1.0"?>\n<!-- <!DOCTYPE gpx> is only mentioned here -->\n<?pi x?>\n', True),
    ("\ufeff<?xml version='1.0' encoding='utf-8'?><!-- a --><!-- b -->", True),
    ('<?xml version="1.0"?><!-- a -->\n<!DOCTYPE gpx>', False),
    ("<!DOCTYPE gpx [<!ENTITY a 'b'>]>", False),
    ("<!-- an unclosed comment <gpx>", False),
])
def test_the_dtd_test_reads_the_prolog(prolog: str, read: bool) -> None:
    """A document type declaration can only stand before the root element: that is where the C engine looks for
    one (searching the whole file cost ~0.12 ms per 360 kB); a DTD anywhere else is an error expat reports."""
    body = SCANNED["plain"][SCANNED["plain"].index(b"<gpx "):]
    data = prolog.encode() + body
    assert (xmlnative.scan(data, _gpx_spec()[0]) is not None) == read
    _same_end_to_end(data)
    late = body.replace(b"<metadata>", b"<!DOCTYPE gpx><metadata>")
    with pytest.raises(ParseError, match="not well-formed") as raised:
        xmlnative.scan(late, _gpx_spec()[0])
    assert _track_or_message(late, "gpx", fast=False) == str(raised.value)
