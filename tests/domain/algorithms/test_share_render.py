from __future__ import annotations

import io

import numpy as np
from PIL import Image

from domain.algorithms import share_render


def _line(n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 1, n)
    return 46.05 + 0.02 * t, 14.50 + 0.03 * np.sin(6 * t)


def test_route_fits_the_frame_and_keeps_its_ends():
    lat, lng = _line()
    projection = share_render.fit([(lat, lng)], 640, 400)
    (d,) = share_render.route_paths([(lat, lng)], projection)
    pts = np.array([[float(v) for v in p.split(",")] for p in d[1:].split(" L")])
    assert pts[:, 0].min() >= 15.9 and pts[:, 0].max() <= 624.1 and pts[:, 1].min() >= 15.9
    assert pts[:, 1].max() <= 384.1
    px, py = projection(lat[[0, -1]], lng[[0, -1]])
    np.testing.assert_allclose(pts[[0, -1]], np.c_[px, py], atol=0.06)
    assert len(pts) < len(lat) / 2  # thinned to what 640 px resolve
    steps = np.hypot(*np.diff(pts, axis=0).T)
    assert steps[:-1].min() >= 1.5 - 0.15


def test_tiles_line_up_with_the_route():
    lat, lng = _line()
    projection = share_render.fit([(lat, lng)], 640, 400, tile_zoom=True)
    tiles = share_render.tiles(projection, "https://tiles.example/{z}/{x}/{y}.png")
    z = projection.zoom
    assert projection.scale == 256 * 2**z
    assert all(url.startswith(f"https://tiles.example/{z}/") for url, _, _ in tiles)
    # The tiles cover the frame.
    xs, ys = [x for _, x, _ in tiles], [y for _, _, y in tiles]
    assert min(xs) <= 0 and max(xs) + 256 >= 640 and min(ys) <= 0 and max(ys) + 256 >= 400


def test_profile_and_preview_image():
    dist, ele = np.linspace(0, 10_000, 300), 100 + 20 * np.sin(np.linspace(0, 6, 300))
    line, area = share_render.profile_paths(dist, ele, 640, 140)
    assert line.startswith("M4.0,") and area.endswith("Z")
    assert share_render.profile_paths(np.zeros(1), np.zeros(1), 640, 140) == ("", "")
    png = share_render.preview_png([_line()], (dist, ele), "Morning Run", "Distance: 10.00 km")
    img = Image.open(io.BytesIO(png))
    assert img.size == (1200, 630)
    pixels = np.asarray(img.convert("RGB")).astype(int)
    assert ((abs(pixels[:, :, 0] - 252) < 4) & (abs(pixels[:, :, 1] - 82) < 4)).sum() > 500
