"""Files shaped like real device and app exports that used to fail or come out wrong (see MANIFEST.tsv notes)."""

from __future__ import annotations

import io

import fitdecode
import numpy as np
import pytest

from domain.algorithms.parsing import ParseError, fitfast, normalize, parse_bytes
from domain.algorithms.parsing.fit import parse_fit_fitdecode
from domain.algorithms.parsing.normalize import MAX_PAUSE_S
from domain.algorithms.track import COLUMNS, Track
from tests.support.corpus import corpus_match


def _read(pattern: str) -> bytes:
    return corpus_match(pattern).read_bytes()


def _refusal(pattern: str, kind: str) -> str:
    with pytest.raises(ParseError) as info:
        normalize(parse_bytes(_read(pattern), kind))
    return str(info.value)


def test_fit_field_size_not_a_multiple_of_its_type_is_read_as_bytes() -> None:
    data = _read("fit/*coros-odd-field-size.fit")
    # The shape is the real one: a strict decoder refuses the file at the definition of event.data.
    with pytest.raises(fitdecode.FitParseError, match="invalid field size 1"):
        list(fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE,
                                 error_handling=fitdecode.ErrorHandling.RAISE))
    track = normalize(parse_bytes(data, "fit"))
    assert len(track) == 600 and track.has_gps
    assert track.sport == "running" and track.device == "Coros 841"
    assert not np.isnan(track.hr).any() and track.totals["distance_m"] == pytest.approx(1795.3)
    # The fast decoder reads it itself, and the reference path (used when the fast one declines) agrees.
    fast, ref = fitfast.parse(data), parse_fit_fitdecode(data)
    for c in COLUMNS:
        np.testing.assert_allclose(getattr(fast, c), getattr(ref, c), equal_nan=True, err_msg=c)
    assert (fast.device, fast.sport, fast.totals) == (ref.device, ref.sport, ref.totals)


def test_reference_decoder_stays_strict_about_undescribed_developer_fields() -> None:
    # Only the field-size check is relaxed: a developer field nobody described still fails the file.
    from tests.domain.algorithms.parsing.test_fitfast import define, fit_file, msg

    data = fit_file(define(0, 20, [(253, 4, 0x86)], dev=[(0, 1, 0)]), msg(0, "IB", 1_000_000_000, 7))
    with pytest.raises(ParseError, match="damaged"):
        parse_fit_fitdecode(data)


def test_route_without_times_is_refused_as_a_planned_route() -> None:
    message = _refusal("gpx/*route-without-times.gpx", "gpx")
    assert message.startswith("The track has no timestamps: it looks like a planned route")


def test_single_point_track_is_refused_precisely() -> None:
    assert _refusal("gpx/*single-point.gpx", "gpx").startswith("The track has only one point with a time")


def test_tracks_months_apart_are_refused_with_their_dates() -> None:
    message = _refusal("gpx/*tracks-months-apart.gpx", "gpx")
    assert "70 days apart (2019-03-09 and 2019-05-18)" in message
    assert "upload each activity as its own file" in message


def test_a_real_multi_track_file_months_apart_is_refused() -> None:
    message = _refusal("gpx/*blue_hills.gpx", "gpx")
    assert message.startswith("The file holds recordings") and "2001-10-13" in message


def test_a_long_pause_inside_one_day_is_one_activity() -> None:
    t = np.array([0.0, 1.0, 2.0, 2.0 + MAX_PAUSE_S, 3.0 + MAX_PAUSE_S]) + 1.6e9
    lat = np.array([46.0, 46.00001, 46.00002, 46.00003, 46.00004])
    track = normalize(Track.from_columns(time=t, lat=lat, lon=np.full(5, 14.5)))
    assert len(track) == 5
    with pytest.raises(ParseError, match="more than a day apart"):
        normalize(Track.from_columns(time=t + np.array([0, 0, 0, 1, 1]), lat=lat, lon=np.full(5, 14.5)))


def test_treadmill_tcx_keeps_the_footpod_distance() -> None:
    track = normalize(parse_bytes(_read("tcx/*treadmill-run-cadence.tcx"), "tcx"))
    assert not track.has_gps
    # The file's last cumulative DistanceMeters (its lap says 494, whole metres).
    assert track.totals["distance_m"] == pytest.approx(494.726)
