"""Reading a share page back to the ground: the points its map draws and the pixels its preview image paints,
mapped back to latitude/longitude, so a test can say how close any of them comes to the owner's home. Used by the
share-page tests, the browser test and bench/smoke_ecosystem.py."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from domain.algorithms import share_render
from domain.algorithms.geo import haversine_m

Line = tuple[np.ndarray, np.ndarray]
MAP_W, MAP_H = 640, 400  # webapp.share.pages
PREVIEW_MAP = (760, 470, 30, 20)  # width, height, pad, offset: domain.algorithms.share_render.preview_png
ROUTE_RGB = (252, 82, 0)


def inverse(projection: share_render.Projection, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = (px + projection.left) / projection.scale, (py + projection.top) / projection.scale
    return np.degrees(np.arctan(np.sinh(math.pi * (1 - 2 * y)))), x * 360.0 - 180.0


def drawn_route(html: str, lines: Sequence[Line]) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lng) of every vertex of the page's route paths, with the projection fitted to ``lines``."""
    paths = re.findall(r'<path class="route" d="([^"]+)"', html)
    if not paths:
        return np.zeros(0), np.zeros(0)
    pts = np.array([[float(v) for v in p.split(",")] for d in paths for p in d[1:].split(" L")])
    return inverse(share_render.fit(lines, MAP_W, MAP_H), pts[:, 0], pts[:, 1])


def preview_route(png: bytes, lines: Sequence[Line]) -> tuple[np.ndarray, np.ndarray, float]:
    """(lat, lng) of every route-coloured pixel of the preview image, and metres per pixel there."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    route = ((abs(img[:, :, 0] - ROUTE_RGB[0]) < 4) & (abs(img[:, :, 1] - ROUTE_RGB[1]) < 4)
             & (img[:, :, 2] < 4))
    ys, xs = np.nonzero(route)
    w, h, pad, offset = PREVIEW_MAP
    projection = share_render.fit(lines, w, h, pad=pad)
    lat, lng = inverse(projection, xs.astype(float) - offset, ys.astype(float) - offset)
    mid_lat = float(np.mean(lat)) if lat.size else 0.0
    return lat, lng, 40_075_016.7 * math.cos(math.radians(mid_lat)) / projection.scale


def nearest_m(lat: np.ndarray, lng: np.ndarray, home: tuple[float, float]) -> float:
    return float(np.min(haversine_m(home[0], home[1], lat, lng))) if lat.size else math.inf
