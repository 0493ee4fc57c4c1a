"""The bulk path: token-budget batches, and vectors equal to the embedder's own encode."""

import numpy as np
import pytest

from jude.bootstrap.bulk import BulkEncoder, BulkOptions, token_budget_batches
from jude.modeling.embedder import Embedder


def test_batches_cover_every_text_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=500)
    batches = token_budget_batches(lengths, token_budget=1024, max_batch_size=64)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    for b in batches:
        assert len(b) <= 64
        assert len(b) == 1 or len(b) * lengths[b].max() <= 1024


def test_short_texts_get_larger_batches():
    lengths = np.array([100] * 10 + [10] * 100)
    batches = token_budget_batches(lengths, token_budget=1000, max_batch_size=512)
    assert len(batches[0]) == 10 and len(batches[-1]) == 100


@pytest.fixture(scope="module")
def texts(snapshot):
    from jude.modeling.templates import render

    return [render(t, f) for t, f in zip(snapshot["entity_type"], snapshot["fields"])][:120]


def test_bulk_encode_matches_embedder_encode(tiny_model_dir, texts):
    model = Embedder.load(tiny_model_dir)
    expected = model.encode(texts, max_length=64, batch_size=16)
    got = BulkEncoder(model, BulkOptions(max_length=64, token_budget=512)).encode(texts)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_approximate_options_stay_close_to_float32(tiny_model_dir, texts):
    model = Embedder.load(tiny_model_dir)
    exact = BulkEncoder(model, BulkOptions(max_length=64)).encode(texts)
    for opts in (BulkOptions(max_length=64, quantize_int8=True), BulkOptions(max_length=64, float16_output=True)):
        approx = BulkEncoder(model, opts).encode(texts)
        assert float(np.mean(np.sum(approx * exact, axis=1))) > 0.95, opts


def test_budget_smaller_than_max_length_is_refused():
    with pytest.raises(ValueError, match="token_budget must be >= max_length"):
        BulkOptions(max_length=256, token_budget=100)
