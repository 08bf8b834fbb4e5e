from __future__ import annotations

import numpy as np
import polyline as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.algorithms.polylines import decode, encode


def test_known_example_from_the_format_documentation():
    lat = np.array([38.5, 40.7, 43.252])
    lon = np.array([-120.2, -120.95, -126.453])
    assert encode(lat, lon) == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


def test_empty():
    assert encode(np.zeros(0), np.zeros(0)) == ""


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-90, 90), st.floats(-180, 180)), min_size=1, max_size=50))
def test_matches_the_reference_encoder(points):
    arr = np.asarray(points)
    ours = encode(arr[:, 0], arr[:, 1])
    assert ours == reference.encode(points, 5)
    lat, lon = decode(ours)
    assert np.allclose(lat, arr[:, 0], atol=1e-5) and np.allclose(lon, arr[:, 1], atol=1e-5)
