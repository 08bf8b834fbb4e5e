"""Drawing a shared activity without any map service: the route (Web Mercator, fitted to the frame) and the
elevation profile as SVG paths, the optional background tiles' placement, and the preview image link unfurlers
show (a PNG drawn with Pillow).

Everything is drawn only from what it is given, which for a share page is the non-owner view: a hidden point
can't appear in a path, a tile position or a pixel of the preview because it is never an input.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["Projection", "fit", "preview_png", "profile_paths", "route_paths", "tiles"]

Line = tuple[np.ndarray, np.ndarray]
TILE = 256
MAX_ZOOM = 18


def mercator(lat: np.ndarray, lng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator in world units (0..1 from the antimeridian and the northern edge)."""
    phi = np.radians(np.clip(lat, -85.05112878, 85.05112878))
    return (np.asarray(lng) + 180.0) / 360.0, (1.0 - np.log(np.tan(phi) + 1.0 / np.cos(phi)) / math.pi) / 2.0


@dataclass
class Projection:
    """World units → pixels of a ``width`` × ``height`` frame: ``scale`` pixels per world unit, then a shift."""

    scale: float
    left: float
    top: float
    width: int
    height: int

    def __call__(self, lat: np.ndarray, lng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = mercator(lat, lng)
        return x * self.scale - self.left, y * self.scale - self.top

    @property
    def zoom(self) -> int:
        return max(0, min(MAX_ZOOM, math.floor(math.log2(max(self.scale, TILE) / TILE))))


def fit(lines: Sequence[Line], width: int, height: int, pad: int = 16, *, tile_zoom: bool = False) -> Projection:
    """The projection that fits every line in the frame (centred). With ``tile_zoom`` the scale is a whole
    zoom level, so background tiles line up with the route."""
    xs, ys = [], []
    for lat, lng in lines:
        x, y = mercator(lat, lng)
        xs.append(x)
        ys.append(y)
    if not xs or not sum(a.size for a in xs):
        return Projection(TILE, 0.0, 0.0, width, height)
    x, y = np.concatenate(xs), np.concatenate(ys)
    dx, dy = max(float(x.max() - x.min()), 1e-9), max(float(y.max() - y.min()), 1e-9)
    scale = min((width - 2 * pad) / dx, (height - 2 * pad) / dy, TILE * 2.0**MAX_ZOOM)
    if tile_zoom:
        scale = TILE * 2.0 ** max(0, min(MAX_ZOOM, math.floor(math.log2(scale / TILE))))
    cx, cy = (float(x.max()) + float(x.min())) / 2, (float(y.max()) + float(y.min())) / 2
    return Projection(scale, cx * scale - width / 2, cy * scale - height / 2, width, height)


def _path(px: np.ndarray, py: np.ndarray) -> str:
    if px.size == 0:
        return ""
    pts = " L".join(f"{a:.1f},{b:.1f}" for a, b in zip(px.tolist(), py.tolist(), strict=True))
    return "M" + pts


def _thin(px: np.ndarray, py: np.ndarray, min_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices closer than ``min_px`` to the last one kept (invisible at this scale; the page gets smaller),
    keeping the last vertex so the line ends where it ends."""
    if px.size < 3:
        return px, py
    keep = [0]
    lx, ly = px[0], py[0]
    for i in range(1, px.size - 1):
        if (px[i] - lx) ** 2 + (py[i] - ly) ** 2 >= min_px * min_px:
            keep.append(i)
            lx, ly = px[i], py[i]
    keep.append(px.size - 1)
    return px[keep], py[keep]


def route_paths(lines: Sequence[Line], projection: Projection, min_px: float = 1.5) -> list[str]:
    """One SVG path per visible stretch (a hidden middle part stays a gap), thinned to what the frame resolves."""
    return [d for d in (_path(*_thin(*projection(lat, lng), min_px)) for lat, lng in lines) if d]


def tiles(projection: Projection, url_template: str) -> list[tuple[str, float, float]]:
    """(url, x, y) of the background tiles covering the frame, for a ``{z}/{x}/{y}`` tile URL template."""
    z = projection.zoom
    size = projection.scale / 2.0**z  # == TILE when the projection was fitted with tile_zoom
    n = 2**z
    first_x, first_y = int(projection.left // size), int(projection.top // size)
    last_x = int((projection.left + projection.width) // size)
    last_y = int((projection.top + projection.height) // size)
    out = []
    for tx in range(first_x, last_x + 1):
        for ty in range(max(0, first_y), min(n - 1, last_y) + 1):
            url = url_template.format(z=z, x=tx % n, y=ty, s="a")
            out.append((url, tx * size - projection.left, ty * size - projection.top))
    return out


def profile_paths(dist: np.ndarray, ele: np.ndarray, width: int, height: int, pad: int = 4) -> tuple[str, str]:
    """(line, filled area) SVG paths of an elevation profile: distance across, altitude up."""
    if dist.size < 2:
        return "", ""
    span = max(float(dist[-1] - dist[0]), 1e-9)
    lo, hi = float(np.min(ele)), float(np.max(ele))
    rise = max(hi - lo, 10.0)  # a flat run is drawn flat, not as noise blown up to full height
    x = pad + (dist - dist[0]) / span * (width - 2 * pad)
    y = height - pad - (ele - lo) / rise * (height - 2 * pad)
    line = _path(x, y)
    return line, f"{line} L{x[-1]:.1f},{height - pad} L{x[0]:.1f},{height - pad} Z"


def preview_png(lines: Sequence[Line], profile: Line, title: str, subtitle: str,
                width: int = 1200, height: int = 630) -> bytes:
    """The Open Graph / Twitter card image: the route on the left, the elevation profile below, the title."""
    img = Image.new("RGB", (width, height), (247, 246, 242))
    draw = ImageDraw.Draw(img)
    map_w, map_h = 760, 470
    projection = fit(lines, map_w, map_h, pad=30)
    draw.rectangle((20, 20, 20 + map_w, 20 + map_h), fill=(233, 236, 229))
    for lat, lng in lines:
        px, py = projection(lat, lng)
        pts = [(20 + a, 20 + b) for a, b in zip(px.tolist(), py.tolist(), strict=True)]
        if len(pts) > 1:
            draw.line(pts, fill=(252, 82, 0), width=6, joint="curve")
    dist, ele = profile
    if dist.size > 1:
        span = max(float(dist[-1]), 1e-9)
        lo, rise = float(ele.min()), max(float(ele.max() - ele.min()), 10.0)
        pts = [(20 + d / span * map_w, height - 25 - (e - lo) / rise * 100)
               for d, e in zip(dist.tolist(), ele.tolist(), strict=True)]
        draw.polygon([*pts, (20 + map_w, height - 25), (20, height - 25)], fill=(200, 205, 214))
        draw.line(pts, fill=(90, 98, 112), width=3)
    font_big, font = _font(46), _font(30)
    draw.text((810, 40), _wrap(title, 16), fill=(24, 24, 24), font=font_big)
    draw.text((810, 330), subtitle, fill=(70, 70, 70), font=font)
    out = io.BytesIO()
    # optimize=True would save ~10 % of the bytes for 5× the time, on every request.
    img.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _wrap(text: str, width: int) -> str:
    words, lines, current = text.split(), [], ""
    for w in words:
        if current and len(current) + 1 + len(w) > width:
            lines.append(current)
            current = w
        else:
            current = f"{current} {w}".strip()
    lines.append(current)
    return "\n".join(lines[:5])
