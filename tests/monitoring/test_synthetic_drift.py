"""Over five seeds of the synthetic marketplace: the unshifted window raises no alert, a shifted one does.

Real MiniLM, real Evidently, small windows (100 entities each, jobs and
profiles, texts cut to 64 tokens) so the whole file runs in a minute or two.
"""

from __future__ import annotations

import pytest

from jude.config import MonitorConfig, SyntheticConfig
from jude.data.synthetic import generate_marketplace
from jude.monitoring.drift import DriftAlert, check_alert, detect_drift
from jude.monitoring.windows import (
    compute_windows,
    current_entities,
    embed_window,
    reference_entities,
    sample_entities,
)

ENTITY_TYPES = ["job", "profile"]
# Every kind of shift, the subtlest (only the city changes) twice.
SHIFTS = {0: "roles", 1: "cities", 2: "style", 3: "all", 4: "cities"}
CFG = MonitorConfig(entity_types=ENTITY_TYPES, current_days=21, sample_size=100, alert="fail")


@pytest.fixture(scope="module")
def short_minilm(minilm):
    """The session's MiniLM with 64-token texts (the header fields carry every shift); restored afterwards."""
    saved = dict(minilm.meta.max_lengths)
    minilm.meta.max_lengths = {k: 64 for k in saved}
    yield minilm
    minilm.meta.max_lengths = saved


def _embed(model, entity_type, frame, window, seed):
    return embed_window(
        model, entity_type, sample_entities(frame, CFG.sample_size, seed), window, "1", show_progress=False
    )


@pytest.mark.parametrize("seed", sorted(SHIFTS))
def test_unshifted_window_raises_no_alert_and_shifted_window_does(short_minilm, seed):
    syn = SyntheticConfig(n_jobs=500, n_members=500, impressions_per_member=2, seed=seed)
    base = generate_marketplace(syn)
    shifted = generate_marketplace(syn.model_copy(update={"shift": SHIFTS[seed]}))
    w = compute_windows(base.jobs, base.members, base.interactions, CFG, val_fraction=0.15, test_fraction=0.2)

    calm, moved = [], []
    for entity_type in ENTITY_TYPES:
        ref = _embed(
            short_minilm, entity_type, reference_entities(entity_type, base.jobs, base.members, w), "reference", seed
        )
        same = _embed(
            short_minilm, entity_type, current_entities(entity_type, base.jobs, base.members, w), "current", seed + 100
        )
        other = _embed(
            short_minilm,
            entity_type,
            current_entities(entity_type, shifted.jobs, shifted.members, w),
            "current",
            seed + 100,
        )
        calm.append(detect_drift(ref, same, CFG, report=False))
        moved.append(detect_drift(ref, other, CFG, report=False))

    assert check_alert(calm, CFG) == [], [r.describe() for r in calm]
    with pytest.raises(DriftAlert) as err:
        check_alert(moved, CFG)
    assert err.value.results, "the alert carries the drifted results"
    for c, m in zip(calm, moved):
        # The shifted window is further away by every measure, not only past a threshold.
        assert m.primary.score > c.primary.score + 0.2, (c.describe(), m.describe())
        assert m.stats.centroid_cosine_distance > c.stats.centroid_cosine_distance
