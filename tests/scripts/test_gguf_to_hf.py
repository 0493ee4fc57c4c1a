"""scripts/gguf_to_hf.py: where the GGUF is found, the errors that name what is missing, and a folder made from
the same GGUF kept. (The conversion itself runs in `make decoder-model`; tests/modeling/test_decoder_real.py
checks the folder it made.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gguf_to_hf", ROOT / "scripts" / "gguf_to_hf.py")
gguf_to_hf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gguf_to_hf)


def test_the_gguf_is_found_where_make_llm_puts_it(tmp_path):
    nested = tmp_path / "smollm2" / gguf_to_hf.GGUF_NAME
    nested.parent.mkdir()
    nested.write_bytes(b"GGUF")
    assert gguf_to_hf.find_local_gguf(models_dir=tmp_path) == nested
    direct = tmp_path / gguf_to_hf.GGUF_NAME
    direct.write_bytes(b"GGUF")
    assert gguf_to_hf.find_local_gguf(models_dir=tmp_path) == direct  # the top level first


def test_a_missing_gguf_is_named(tmp_path):
    with pytest.raises(gguf_to_hf.ConversionError, match="no such file"):
        gguf_to_hf.locate_gguf(tmp_path / "nope.gguf", tmp_path)


def test_no_download_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(gguf_to_hf, "find_local_gguf", lambda *a, **k: None)
    with pytest.raises(gguf_to_hf.ConversionError, match="make llm.*--no-download.*--gguf"):
        gguf_to_hf.locate_gguf(None, tmp_path, allow_download=False)


def test_a_file_that_is_not_a_gguf_is_refused_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    out = tmp_path / "out"
    assert gguf_to_hf.main(["--gguf", str(bad), "--out", str(out)]) == 1
    assert "bad.gguf" in capsys.readouterr().err and not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary folder left behind


def test_a_folder_made_from_the_same_gguf_is_kept(tmp_path, capsys):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights")
    (out / gguf_to_hf.SOURCE_FILE).write_text(json.dumps({"gguf_sha256": gguf_to_hf.sha256(gguf)}))
    assert gguf_to_hf.main(["--gguf", str(gguf), "--out", str(out)]) == 0  # no conversion attempted
    assert "already" in capsys.readouterr().out and (out / "model.safetensors").read_bytes() == b"weights"
