"""The embedder on a tiny random BERT: pooling, the trainable recipe, LoRA targets, the saved directory,
and the on-disk format (jude.modeling.model_dir), which reads without torch.

Decoder-only bases are tested in test_decoder.py, the scale switches in test_scale_switches.py.
"""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from jude.config import LoRAConfig, ModelConfig, ScaleConfig, ScaleConfigError
from jude.modeling.embedder import Embedder
from jude.modeling.model_dir import (
    META_FILE,
    EmbedderMeta,
    ModelDir,
    meta_from_sentence_transformers,
    resolve_model_path,
    write_sentence_transformers_config,
)
from jude.modeling.pooling import pool

TEXTS = ["a data engineer in berlin", "a nurse", "skills: python, sql, spark, kubernetes"]


# ---- pooling -----------------------------------------------------------------------------
HIDDEN = torch.tensor(
    [
        [[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]],  # right padded: two real tokens, then padding
        [[9.0, 9.0], [2.0, 4.0], [4.0, 0.0]],  # left padded: padding, then two real tokens
    ]
)  # (B=2, T=3, H=2)
MASK = torch.tensor([[1, 1, 0], [0, 1, 1]])  # (B, T)


def test_mean_pooling_averages_the_real_tokens_only():
    assert torch.equal(pool(HIDDEN, MASK, "mean"), torch.tensor([[2.0, 1.0], [3.0, 2.0]]))


def test_cls_pooling_takes_the_first_position():
    assert torch.equal(pool(HIDDEN, MASK, "cls"), torch.tensor([[1.0, 0.0], [9.0, 9.0]]))


def test_lasttoken_pooling_takes_the_last_real_token_on_either_padding_side():
    assert torch.equal(pool(HIDDEN, MASK, "lasttoken"), torch.tensor([[3.0, 2.0], [4.0, 0.0]]))


def test_unknown_pooling_is_named():
    with pytest.raises(ValueError, match="pooling must be one of .*got 'max'"):
        pool(HIDDEN, MASK, "max")


# ---- building ----------------------------------------------------------------------------
def test_unknown_lora_target_is_named(tiny_bert_dir):
    emb = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir)))
    with pytest.raises(ValueError, match="q_proj"):
        emb.add_lora(LoRAConfig(target_modules=["q_proj"]))


def test_trainable_adds_lora_and_the_switches_the_scale_asks_for(tiny_bert_dir):
    model = ModelConfig(base_model=str(tiny_bert_dir))
    plain = Embedder.trainable(model, LoRAConfig(r=4), ScaleConfig())
    assert plain.has_lora and not plain.gradient_checkpointing
    assert plain.meta.extra["lora"]["target_modules"] == ["query", "key", "value"]
    assert all("lora_" in n for n, p in plain.named_parameters() if p.requires_grad)
    ckpt = Embedder.trainable(model, LoRAConfig(r=4), ScaleConfig(gradient_checkpointing=True))
    assert ckpt.has_lora and ckpt.gradient_checkpointing


def test_trainable_refuses_contradicting_switches_before_loading_weights():
    model = ModelConfig(base_model="/no/such/model", dtype="float16")  # would be a ModelLoadError if loaded
    with pytest.raises(ScaleConfigError, match="scale.bf16=true with model.dtype='float16'"):
        Embedder.trainable(model, LoRAConfig(), ScaleConfig(bf16=True))


# ---- the saved directory -------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_bert_dir):
    """A LoRA embedder (LoRA B made non-zero, so merging changes the weights) saved to disk."""
    torch.manual_seed(0)
    emb = Embedder.trainable(ModelConfig(base_model=str(tiny_bert_dir), pooling="cls"), LoRAConfig(r=4))
    with torch.no_grad():
        for n, p in emb.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    path = emb.save(tmp_path_factory.mktemp("embedder") / "m")
    return emb.eval(), path


def test_save_writes_a_sentence_transformers_directory_with_its_meta(saved):
    emb, path = saved
    assert (path / "adapter").is_dir() and (path / "config.json").exists()
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]
    assert [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())] == [
        "Transformer",
        "Pooling",
        "Normalize",
    ]
    meta = ModelDir(str(path)).meta
    assert meta.pooling == "cls" and meta.dimension == 32 and meta.extra["lora"]["r"] == 4


def test_a_saved_model_reloads_to_the_same_embeddings_lora_merged(saved):
    emb, path = saved
    reloaded = ModelDir(str(path)).load()
    assert not reloaded.has_lora
    np.testing.assert_allclose(reloaded.encode(TEXTS), emb.encode(TEXTS), atol=1e-5)


def test_a_directory_without_jude_json_takes_the_sentence_transformers_pooling(saved, tmp_path):
    import shutil

    _, path = saved
    plain = tmp_path / "st"
    shutil.copytree(path, plain)
    (plain / META_FILE).unlink()
    meta = Embedder.load(plain).meta
    assert meta.pooling == "cls" and meta.normalize
    assert meta.max_lengths == {"job": 256, "profile": 256, "resume": 256}  # the one max_seq_length


# ---- the format, without torch ------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_the_format_and_the_materializer_read_a_model_dir_without_torch(tmp_path):
    (tmp_path / META_FILE).write_text(json.dumps({"base_model": "minilm", "pooling": "mean", "dimension": 384}))
    code = (
        "import sys\n"
        "from jude.modeling.model_dir import ModelDir\n"
        "import materializers.model_dir\n"
        f"print(ModelDir({str(tmp_path)!r}).meta.dimension)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["384", "[]"]


def test_meta_keeps_keys_it_does_not_know_in_extra():
    meta = EmbedderMeta.from_dict({"pooling": "cls", "dimension": 8, "future_key": 1, "extra": {"lora": {"r": 4}}})
    assert meta.pooling == "cls" and meta.dimension == 8
    assert meta.extra == {"lora": {"r": 4}, "future_key": 1}


@pytest.mark.parametrize("pooling", ["mean", "cls", "lasttoken"])
@pytest.mark.parametrize("normalize", [True, False])
def test_sentence_transformers_files_round_trip_the_pooling_and_normalisation(tmp_path, pooling, normalize):
    meta = EmbedderMeta(pooling=pooling, normalize=normalize, dimension=16, max_lengths={"job": 64, "profile": 32})
    write_sentence_transformers_config(tmp_path, meta)
    encoder = SimpleNamespace(architectures=["BertModel"], model_type="bert", hidden_size=16)
    back = meta_from_sentence_transformers(tmp_path, encoder)
    assert (back.pooling, back.normalize, back.dimension) == (pooling, normalize, 16)
    assert back.max_lengths == {"job": 64, "profile": 64, "resume": 64}  # one max_seq_length for every entity
    assert back.padding_side == "right" and not back.append_eos


def test_a_decoder_directory_pads_left_and_appends_eos_for_last_token_pooling(tmp_path):
    write_sentence_transformers_config(tmp_path, EmbedderMeta(pooling="lasttoken", dimension=8))
    decoder = SimpleNamespace(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=8)
    back = meta_from_sentence_transformers(tmp_path, decoder)
    assert back.padding_side == "left" and back.append_eos and back.model_type == "qwen2"


def test_model_names_resolve_to_the_packaged_minilm_or_pass_through():
    assert (Path(resolve_model_path("minilm")) / "config.json").exists()
    assert resolve_model_path("/models/qwen2-7b") == "/models/qwen2-7b"
