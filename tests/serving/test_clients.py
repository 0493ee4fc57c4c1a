"""The clients people already use work unchanged against `jude serve`: OpenAI's and Hugging Face's."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from jude.config import ServeConfig
from tests.serving.conftest import live_server


@pytest.fixture(scope="module")
def base_url(engine):
    from jude.serving.app import create_app

    with live_server(create_app(engine, ServeConfig())) as url:
        yield url


def test_the_openai_client_embeds_plain_and_base64_and_gets_a_400_for_empty_input(base_url, engine):
    openai = pytest.importorskip("openai", reason="openai is a dev dependency (pyproject [dev])")
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    text = "senior data engineer in Berlin"
    plain = client.embeddings.create(model="jude", input=[text, "pastry chef in Lyon"], encoding_format="float")
    assert [d.index for d in plain.data] == [0, 1] and len(plain.data[0].embedding) == engine.info.dimension
    expected = engine.embed([text])[0]
    assert float(np.dot(plain.data[0].embedding, expected)) > 0.9999
    # the client's default asks for base64 and decodes it itself
    packed = client.embeddings.create(model="jude", input=text)
    assert np.allclose(packed.data[0].embedding, plain.data[0].embedding, atol=1e-6)
    raw = client.embeddings.with_raw_response.create(model="jude", input=text, encoding_format="base64")
    vector = np.frombuffer(base64.b64decode(raw.parse().data[0].embedding), dtype="<f4")
    assert vector.shape == (engine.info.dimension,)
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="jude", input=[])
    assert e.value.status_code == 400


def test_huggingface_hub_feature_extraction_posts_to_the_root_route_as_tei_serves_it(base_url, engine, monkeypatch):
    import huggingface_hub.constants
    from huggingface_hub import InferenceClient

    # HF_HUB_OFFLINE=1 (this project's default: no hub) makes huggingface_hub refuse every request, even to a
    # server on 127.0.0.1; a user calling jude with this client unsets it for that process
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    client = InferenceClient(base_url=base_url)
    out = np.asarray(client.feature_extraction("senior data engineer in Berlin"))
    assert out.shape[-1] == engine.info.dimension
    assert float(np.dot(out.reshape(-1), engine.embed(["senior data engineer in Berlin"])[0])) > 0.9999


def test_tei_routes_answer_as_tei_does(base_url):
    import httpx

    assert httpx.get(f"{base_url}/", timeout=10).json() == {"status": "alive"}
    assert httpx.get(f"{base_url}/ping", timeout=10).status_code == 200
    for path in ("/", "/invocations"):
        got = httpx.post(f"{base_url}{path}", json={"inputs": ["a", "b"]}, timeout=30)
        assert got.status_code == 200 and len(got.json()) == 2, path
        assert httpx.post(f"{base_url}{path}", json={"inputs": []}, timeout=30).status_code == 400, path
    assert len(httpx.post(f"{base_url}/embeddings", json={"input": "a"}, timeout=30).json()["data"]) == 1
