"""validate.collision on the Ray runner: the steps before it per batch, then a join of the survivors with the
dataset's positives (length buckets), the best ratio joined back; the same rejects as the local CollisionFilter."""

from __future__ import annotations

import pytest
from datasets import load_from_disk

ray = pytest.importorskip("ray", reason="runner: ray needs `pip install 'synthgen[ray]'` (make install does it)")

from test_ray_runner import assert_same_run, both_runners, ray_cluster  # noqa: E402,F401 - the fixture is shared


@pytest.mark.parametrize("threshold", [0.0, 40.0, 90.0, 100.0])
def test_lengths_that_can_reach_the_threshold_share_or_neighbour_a_bucket(threshold):
    from synthgen.runners.ray_collision import length_bucket
    from synthgen.validate.dedup import _length_window

    w = _length_window(threshold)
    for a in range(1, 400):
        for b in range(a, 800):
            if a / b >= w:
                assert abs(length_bucket(a, w) - length_bucket(b, w)) <= 1, (a, b)


def test_collisions_on_ray_equal_local(tmp_path, ray_cluster):
    """Mining the sample: a passage mined for one query that is another query's positive collides."""
    from synthgen.commands.mine import mine

    local, on_ray, a, b = both_runners(tmp_path, mine, "batch_queries=3", "mine.sources={dense: 1, bm25: 1}",
                                       "validate.collision=90")
    assert_same_run(local, on_ray, a, b)  # rows, rules, scores, details (the ratios) to 1e-5; counts; stages
    rules = [r["rule"] for r in load_from_disk(str(on_ray / "rejects"))]
    assert rules.count("positive_collision") > 0
    assert b["stages"]["collision"]["in"] > b["stages"]["collision"]["out"] > 0  # some rows go on past it
