"""The decoder embedder on a real tokenizer and real weights: SmolLM2-135M-Instruct (llama, Q4_1 GGUF dequantised).

The base is ``.jude/models/smollm2-135m-instruct`` when ``make decoder-model`` (scripts/gguf_to_hf.py) made it;
otherwise a tiny random Llama with SmolLM2's real tokenizer, read from the GGUF that ``make llm`` installs; with
neither, these tests skip and say which command makes the model. What is checked is what a real tokenizer and
real weights change against the tiny word-level models of test_decoder.py: the EOS token (``<|im_end|>``)
appended and read by last-token pooling under left and right padding, truncation, and the same vector from the
trainer's model, ``jude serve``'s engine, the bootstrap's bulk path and the nearline inference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from jude.config import LoRAConfig, ModelConfig, TrainConfig
from jude.modeling.embedder import Embedder
from jude.modeling.pooling import pool

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2_DIR = ROOT / ".jude" / "models" / "smollm2-135m-instruct"
GGUF = ROOT / ".jude" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS = "<|im_end|>"  # SmolLM2-Instruct's end-of-turn token (id 2), its EOS
NO_MODEL = (
    f"neither {SMOLLM2_DIR.relative_to(ROOT)} (`make decoder-model`, about a minute) nor "
    f"{GGUF.relative_to(ROOT)} (`make llm`) exists: no real SmolLM2 tokenizer or weights to test"
)
COSINE = 0.9999
SHORT = ["a nurse in Madrid", "Data engineer; Python, SQL, Spark", "x"]


def _converted() -> bool:
    return all((SMOLLM2_DIR / f).exists() for f in ("config.json", "model.safetensors", "tokenizer.json"))


def _save_tiny_llama(path: Path, tokenizer, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random Llama over ``tokenizer``'s vocabulary, saved with it."""
    from transformers import AutoModelForCausalLM

    from jude.modeling.tiny import tiny_decoder_config

    cfg = tiny_decoder_config("llama", vocab_size=len(tokenizer), hidden_size=32, pad_token_id=2, eos_token_id=2)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def smol_tokenizer():
    """SmolLM2's real tokenizer: from the converted folder, else read from the GGUF (about 10 s)."""
    from transformers import AutoTokenizer

    if _converted():
        return AutoTokenizer.from_pretrained(SMOLLM2_DIR)
    if GGUF.exists():
        return AutoTokenizer.from_pretrained(GGUF.parent, gguf_file=GGUF.name)
    pytest.skip(NO_MODEL)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, smol_tokenizer) -> Path:
    """The real SmolLM2 folder, or a tiny random Llama with the real tokenizer when it was not converted."""
    if _converted():
        return SMOLLM2_DIR
    return _save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-smol-tok") / "m", smol_tokenizer)


def _cfg(path: Path, job: int = 128, profile: int = 64) -> ModelConfig:
    return ModelConfig(
        base_model=str(path),
        pooling="lasttoken",
        template_style="instruct",
        max_length_job=job,
        max_length_profile=profile,
        max_length_resume=job,
    )


@pytest.fixture(scope="module")
def base(base_dir) -> Embedder:
    return Embedder.from_base(_cfg(base_dir)).eval()


@pytest.fixture(scope="module")
def job_texts(base, small_market) -> list[str]:
    """Texts of very different lengths (a job posting is cut at any limit used here): a padded batch."""
    return base.render("job", small_market.jobs.head(2)) + SHORT


def test_the_decoder_config_trains_the_converted_folder_as_the_7b_config_trains_its_model():
    from jude.config import read_pipeline_config

    cfg = read_pipeline_config("train", ROOT / "configs" / "train_decoder.yaml")
    gpu = read_pipeline_config("train", ROOT / "configs" / "train_gpu_7b.yaml")
    assert ROOT / cfg.model.base_model == SMOLLM2_DIR  # where `make decoder-model` writes
    for key in ("pooling", "template_style", "normalize"):
        assert getattr(cfg.model, key) == getattr(gpu.model, key), key
    assert cfg.lora.target_modules == gpu.lora.target_modules == ["q_proj", "k_proj", "v_proj"]


def test_the_converted_folder_is_the_real_language_model():
    """Dequantised right (llama.cpp permutes Q/K; transformers must undo it): the model still knows Paris."""
    if not _converted():
        pytest.skip(f"{SMOLLM2_DIR.relative_to(ROOT)} not converted: run `make decoder-model` (about a minute)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = json.loads((SMOLLM2_DIR / "gguf_source.json").read_text())
    assert src["gguf_file"] == GGUF.name and src["model_type"] == "llama"
    tok = AutoTokenizer.from_pretrained(SMOLLM2_DIR)
    lm = AutoModelForCausalLM.from_pretrained(SMOLLM2_DIR).eval()
    assert lm.config.num_hidden_layers == 30 and lm.config.hidden_size == 576
    assert not hasattr(lm.config, "quantization_config") or lm.config.quantization_config is None
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1] :])


def test_a_real_decoder_base_pads_left_and_appends_its_eos(base):
    assert base.meta.model_type == "llama" and base.is_decoder
    assert base.meta.padding_side == "left" and base.tokenizer.padding_side == "left"
    assert base.meta.append_eos and base.tokenizer.eos_token == EOS and base.appends_eos
    plain = base.tokenizer("a nurse")["input_ids"]
    assert plain and plain[-1] != base.tokenizer.eos_token_id  # SmolLM2's tokenizer adds no EOS: jude must


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_pooled_position_holds_the_appended_eos(base, job_texts, side):
    base.meta.padding_side = base.tokenizer.padding_side = side
    try:
        enc = base.tokenize(job_texts, 48)
    finally:
        base.meta.padding_side = base.tokenizer.padding_side = "left"
    ids, mask = enc["input_ids"], enc["attention_mask"]  # (B, T)
    B, T = ids.shape
    assert (mask.sum(1) < T).any()  # the batch is padded somewhere
    if side == "left":
        assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()
    else:
        assert (mask[:, 0] == 1).all() and (mask[:, -1] == 0).any()
    assert (mask.diff(dim=1) != 0).sum(1).le(1).all()  # one run of real tokens per row: padding on one side only
    # what last-token pooling reads: feed each position's own index as its "hidden state"
    positions = torch.arange(T, dtype=torch.float32).expand(B, T).unsqueeze(-1)  # (B, T, 1)
    pooled_at = pool(positions, mask, "lasttoken").squeeze(-1).long()  # (B,)
    assert (ids[torch.arange(B), pooled_at] == base.tokenizer.eos_token_id).all()
    assert ((ids == base.tokenizer.eos_token_id) & mask.bool()).sum(1).eq(1).all()  # one real EOS per row


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_padded_batch_embeds_each_text_as_alone(base, job_texts, side):
    base.meta.padding_side = base.tokenizer.padding_side = side
    try:
        with torch.no_grad():
            batch = base.embed_texts(job_texts[1:], 40)  # (B, D), padded to the longest
            alone = torch.cat([base.embed_texts([t], 40) for t in job_texts[1:]])  # no padding
    finally:
        base.meta.padding_side = base.tokenizer.padding_side = "left"
    cos = (batch * alone).sum(1)
    assert cos.min().item() >= COSINE, cos


def test_every_path_tokenises_alike_and_ends_in_one_eos(base, job_texts):
    from jude.serving.engine import InferenceEngine

    engine = InferenceEngine.from_embedder(base)
    texts = [*job_texts, "a nurse" + EOS]  # an EOS already at the end is not doubled
    trainer_ids = base.token_ids(texts, 32)  # the trainer's pre-tokenised path
    served = [p.input_ids for p in engine.prepare(texts, max_tokens=32)]
    assert served == trainer_ids
    assert all(row[-1] == base.tokenizer.eos_token_id and len(row) <= 32 for row in trainer_ids)
    assert max(len(row) for row in trainer_ids) == 32  # the job texts were cut, and still end in EOS
    assert sum(i == base.tokenizer.eos_token_id for i in trainer_ids[-1]) == 1


def test_a_tokenizer_that_ends_texts_with_eos_gets_no_second_one(tmp_path, smol_tokenizer, job_texts):
    """A tokenizer that ends every text with EOS itself (an EOS post-processor, add_eos_token): neither jude nor
    the server may add another (the server once appended the EOS text before tokenising: two EOS)."""
    from tokenizers.processors import TemplateProcessing

    from jude.serving.engine import InferenceEngine

    tok = smol_tokenizer.__class__.from_pretrained(_save_tiny_llama(tmp_path / "plain", smol_tokenizer))
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, tok.eos_token_id)]
    )
    emb = Embedder.from_base(_cfg(_save_tiny_llama(tmp_path / "eos", tok)))
    assert not emb.appends_eos  # the tokenizer does it
    engine = InferenceEngine.from_embedder(emb)
    served = [p.input_ids for p in engine.prepare(job_texts, max_tokens=32)]
    assert served == emb.token_ids(job_texts, 32)
    assert all(row[-1] == emb.tokenizer.eos_token_id and row[-2] != emb.tokenizer.eos_token_id for row in served)


# ---- one short fine-tune on the real base: every way of embedding gives the trainer's vectors ----------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_dir, small_market):
    """Two LoRA steps on the base; the trainer's own (unmerged) model and the saved directory."""
    from jude.training.trainer import train_embedder

    m = small_market
    n = 4
    pairs = pd.DataFrame(
        {
            "member_id": m.members["member_id"].iloc[:n].tolist(),
            "job_id": m.jobs["job_id"].iloc[:n].tolist(),
            "label": 1,
            "grade": 3,
            "source": "relevance",
        }
    )
    cfg = _cfg(base_dir, job=48, profile=32)  # short texts: two steps of a 135M model stay a few seconds
    model = Embedder.trainable(cfg, LoRAConfig(r=4, alpha=8))
    out = tmp_path_factory.mktemp("decoder-real") / "model"
    res = train_embedder(
        pairs,
        m.jobs,
        m.members,
        cfg,
        LoRAConfig(r=4, alpha=8),
        TrainConfig(batch_size=2, max_steps=2, learning_rate=1e-3, hard_negatives=0, member_views=["profile"]),
        out,
        show_progress=False,
        embedder=model,
    )
    losses = [h["train/loss"] for h in res.history if "train/loss" in h]
    assert len(losses) == 2 and np.isfinite(losses).all()
    return model.eval(), out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


@pytest.mark.slow  # two training steps of a 135M model, then three loads of it: about a minute on 2 cores
def test_trainer_serve_bulk_and_nearline_give_the_same_vectors(trained, small_market):
    from jude.bootstrap.engines import LocalEngine
    from jude.nearline.inference import LocalInference
    from jude.serving.engine import load_engine

    model, saved = trained
    records = small_market.jobs.head(3).to_dict("records")
    texts = model.render("job", records)
    limit = model.meta.max_lengths["job"]  # 48: every job text is cut, and must still end in EOS
    assert model.has_lora  # the trainer's model, LoRA unmerged
    vectors = {
        "trainer": model.encode_token_ids(model.token_ids(texts, limit)),  # the trainer's path (validation, mining)
        "serve": load_engine(str(saved)).embed(texts, max_tokens=limit),  # jude serve's engine
        "bulk": LocalEngine(saved).encode(texts, "job"),  # the bootstrap's bulk path
        "nearline": LocalInference(str(saved)).embed("job", records),  # the nearline updater, in process
    }
    for name, v in vectors.items():
        assert v.shape == (3, model.dimension), name
        cos = _cosines(vectors["trainer"], v)
        assert cos.min() >= COSINE, (name, cos)


@pytest.mark.slow
def test_the_registered_real_decoder_serves_from_a_models_uri(trained, mlflow_uri, small_market):
    import mlflow

    from jude.registry.mlflow_registry import configure, log_model_version
    from jude.serving.engine import load_engine

    model, saved = trained
    configure(experiment="decoder-real")  # artifacts beside the test's private sqlite store
    with mlflow.start_run():
        info = log_model_version(saved, "jude-embedder")
    engine = load_engine(f"models:/jude-embedder/{info.version}")
    assert engine.info.registry_version == info.version and engine.info.pooling == "lasttoken"
    texts = model.render("job", small_market.jobs.head(2))
    got = engine.embed(texts, max_tokens=engine.entity_max_tokens("job"))
    assert _cosines(model.encode_token_ids(model.token_ids(texts, 48)), got).min() >= COSINE
