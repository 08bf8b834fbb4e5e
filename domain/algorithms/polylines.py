"""Google encoded polylines, vectorised.

The ``polyline`` package encodes point by point in Python (~3 µs a point); activities carry thousands of
points and the public and owner views are both encoded on every ingest, so this encoder does the same
arithmetic with numpy. ``tests/domain/algorithms/test_polylines.py`` checks it against the ``polyline`` package.
"""

from __future__ import annotations

import numpy as np

MAX_CHUNKS = 7  # a 32-bit zig-zagged delta needs at most 7 five-bit chunks


def encode(lat: np.ndarray, lon: np.ndarray, precision: int = 5) -> str:
    """Encode the points (NaN-free arrays in degrees) as a Google polyline string."""
    if lat.shape[0] == 0:
        return ""
    factor = 10 ** precision
    # Round half away from zero, as the reference implementation does.
    ints = np.stack([np.sign(lat) * np.floor(np.abs(lat) * factor + 0.5),
                     np.sign(lon) * np.floor(np.abs(lon) * factor + 0.5)], axis=1).astype(np.int64)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).reshape(-1)
    zigzag = np.where(deltas < 0, ~(deltas << 1), deltas << 1).astype(np.uint64)
    shifts = np.arange(MAX_CHUNKS, dtype=np.uint64) * np.uint64(5)
    chunks = (zigzag[:, None] >> shifts[None, :]) & np.uint64(0x1F)
    # Number of chunks per value: at least one, then as many as needed for the highest set bit.
    remaining = zigzag[:, None] >> shifts[None, :]
    n_chunks = np.maximum(1, (remaining > 0).sum(axis=1))
    used = np.arange(MAX_CHUNKS)[None, :] < n_chunks[:, None]
    more = np.arange(MAX_CHUNKS)[None, :] < (n_chunks[:, None] - 1)
    codes = (chunks | np.where(more, np.uint64(0x20), np.uint64(0))) + np.uint64(63)
    return codes[used].astype(np.uint8).tobytes().decode("ascii")


def decode(text: str, precision: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode` (used by tests and by clients of the API in our own tooling)."""
    import polyline as reference

    points = reference.decode(text, precision)
    if not points:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(points, dtype=np.float64)
    return arr[:, 0], arr[:, 1]
