"""Every real file of the test corpus ends as its manifest row says, through the API and the worker."""

from __future__ import annotations

import pytest

from tests.support.corpus import corpus_file, manifest_rows
from tests.support.uploads import upload_and_wait

pytestmark = pytest.mark.pipeline


@pytest.mark.parametrize("row", manifest_rows(), ids=lambda r: r["file"])
def test_corpus_file_ends_as_its_manifest_says(live_client, live_login, row):
    ann, _ = live_login("ann")
    data = corpus_file(row["file"]).read_bytes()
    done = upload_and_wait(live_client, ann, data, row["file"].rsplit("/", 1)[-1])
    expected = row["expected"]
    if expected in ("corrupt", "refused"):
        assert done["status"] == "failed", done
        assert done["error"] and "Traceback" not in done["error"]
        return
    if expected == "no-gps" and done["status"] == "failed":
        # A file with no points at all can only fail, clearly.
        assert "no track points" in done["error"].lower(), done
        return
    assert done["status"] == "ready", done
    activity = live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).json
    assert activity["elapsed_time_s"] > 0
    if expected == "ok":
        assert activity["has_gps"] and activity["map"]["polyline"] and activity["distance_m"] > 0
    else:
        assert activity["has_gps"] is False and activity["map"] is None


def _decimals(value: object) -> int:
    text = repr(value)
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text else 0


def test_treadmill_tcx_gets_its_footpod_distance_and_figures_are_rounded(live_client, live_login):
    ann, _ = live_login("ann")
    data = corpus_file("tcx/strava-plus-one__treadmill-run-cadence.tcx").read_bytes()
    done = upload_and_wait(live_client, ann, data, "treadmill.tcx")
    assert done["status"] == "ready", done
    activity = live_client.get(f"/api/v1/activities/{done['activity_id']}", headers=ann).json
    assert activity["distance_m"] == 494.7  # the footpod's, not 0 m: there is no position at all
    assert 2.0 < activity["avg_speed_mps"] < 2.2
    for key, decimals in (("distance_m", 1), ("elapsed_time_s", 1), ("moving_time_s", 1), ("avg_speed_mps", 3),
                          ("avg_hr", 1), ("avg_cadence", 1)):
        assert activity[key] is not None and _decimals(activity[key]) <= decimals, (key, activity[key])
