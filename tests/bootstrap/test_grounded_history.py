"""The bootstrap's synthetic history (``bootstrap.history: true``) on the grounded world (``data.synthetic.world:
grounded``): the row versions of its change stream are selected and backfilled like the small world's."""

from __future__ import annotations

from jude.bootstrap.backfill import backfill
from jude.bootstrap.engines import LocalEngine
from jude.bootstrap.run import selected_rows
from jude.config import BootstrapConfig, DataConfig, SyntheticConfig
from jude.data.grounded.taxonomy import grounded_occupation_of
from jude.data.synthetic import generate_marketplace
from jude.stores.offline import DeltaHistory

GROUNDED = dict(world="grounded", occupations=30, areas=10, n_jobs=80, n_members=60, days=30, impressions_per_member=15)
VERSION = "boot-grounded-1"


def test_the_history_of_a_grounded_marketplace_backfills(tiny_model_dir, tmp_path):
    data = DataConfig(synthetic=SyntheticConfig(seed=4, **GROUNDED))
    market = generate_marketplace(data.synthetic)
    ids = [*market.jobs["job_id"].head(12), *market.members["member_id"].head(8)]
    rows = selected_rows(BootstrapConfig(history=True, ids=ids), data, market.jobs, market.members)
    assert set(rows["entity_type"]) == {"job", "profile", "resume"}
    jobs = rows[(rows["entity_type"] == "job") & (rows["op"] == "upsert")]
    assert all(grounded_occupation_of(f["title"]) is not None for f in jobs["fields"])

    history = DeltaHistory(str(tmp_path / "history"))
    report = backfill(rows, LocalEngine(str(tiny_model_dir)), None, history, VERSION, chunk_size=50)
    assert report.rows == len(rows) > 3 * report.inferences > 0  # counter re-saves render the same text
    stored = history.read(version=VERSION)
    assert set(stored["entity_id"]) == set(rows["entity_id"])
