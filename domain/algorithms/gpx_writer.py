"""The one GPX writer: a Track as GPX 1.1, the format every watch app and our own parser read.

Used wherever the product writes a GPX file (a live session saved as an activity; exports) and by the tests'
synthetic tracks. One track, one segment; heart rate, cadence and temperature as Garmin's TrackPointExtension,
power as Garmin's PowerExtension ``PowerInWatts`` (an element of its own namespace, so the file stays valid
GPX 1.1: extensions must come from another schema than GPX's, which rules out a bare ``<power>``). Points without a
position can't be GPX track points and are skipped; a NaN column is omitted for that point. The output is a
pure function of the track, so a retried writer stores the same bytes.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

import numpy as np

from domain.algorithms.geo import known_positions
from domain.algorithms.track import Track
from domain.algorithms.writer_common import format_time as _format_time

__all__ = ["to_gpx"]


def to_gpx(track: Track) -> bytes:
    """Serialise a track as GPX 1.1 (one trk/trkseg) with Garmin TrackPointExtension hr/cad/atemp.

    Power goes in Garmin's PowerExtension ``PowerInWatts``. Points
    without a position cannot be expressed in GPX and are skipped; NaN columns are simply omitted per point.
    """
    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<gpx version="1.1" creator="', escape(track.device or "synthetic", {'"': "&quot;"}), '" ',
        'xmlns="http://www.topografix.com/GPX/1/1" ',
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ',
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1" ',
        'xmlns:pwr="http://www.garmin.com/xmlschemas/PowerExtension/v1" ',
        'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">\n',
    ]
    if len(track):
        out.append(f"<metadata><time>{_format_time(float(track.time[0]))}</time></metadata>\n")
    out.append("<trk>\n")
    if track.name:
        out.append(f"<name>{escape(track.name)}</name>\n")
    if track.sport:
        out.append(f"<type>{escape(track.sport)}</type>\n")
    out.append("<trkseg>\n")
    for i in np.flatnonzero(known_positions(track.lat, track.lon)):
        parts = [f'<trkpt lat="{track.lat[i]:.7f}" lon="{track.lon[i]:.7f}">']
        if not math.isnan(track.ele[i]):
            parts.append(f"<ele>{track.ele[i]:.2f}</ele>")
        parts.append(f"<time>{_format_time(float(track.time[i]))}</time>")
        tpx = []
        if not math.isnan(track.temp[i]):
            tpx.append(f"<gpxtpx:atemp>{track.temp[i]:.1f}</gpxtpx:atemp>")
        if not math.isnan(track.hr[i]):
            tpx.append(f"<gpxtpx:hr>{round(track.hr[i])}</gpxtpx:hr>")
        if not math.isnan(track.cadence[i]):
            tpx.append(f"<gpxtpx:cad>{round(track.cadence[i])}</gpxtpx:cad>")
        ext = []
        if not math.isnan(track.power[i]):
            ext.append(f"<pwr:PowerInWatts>{round(track.power[i])}</pwr:PowerInWatts>")
        if tpx:
            ext.append("<gpxtpx:TrackPointExtension>" + "".join(tpx) + "</gpxtpx:TrackPointExtension>")
        if ext:
            parts.append("<extensions>" + "".join(ext) + "</extensions>")
        parts.append("</trkpt>\n")
        out.append("".join(parts))
    out.append("</trkseg>\n</trk>\n</gpx>\n")
    return "".join(out).encode("utf-8")
