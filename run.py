"""jude's entry point: pick a pipeline, validate its YAML, bootstrap the local stack, run.

    python run.py --pipeline train [--config configs/train.yaml] [--no-cache]
    python run.py --pipeline deploy [--config configs/deploy_local.yaml] [--dry-run --output DIR]
    python run.py --pipeline monitor [--config configs/monitor.yaml]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# No telemetry and no model hub, before zenml / transformers are imported.
for key, value in {"ZENML_ANALYTICS_OPT_IN": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "MLFLOW_ENABLE_TELEMETRY": "false",
                   "DO_NOT_TRACK": "1"}.items():
    os.environ.setdefault(key, value)

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIGS = {
    "train": ROOT / "configs" / "train.yaml",
    "deploy": ROOT / "configs" / "deploy_local.yaml",
    "monitor": ROOT / "configs" / "monitor.yaml",
}


class ConfigError(ValueError):
    pass


def load_parameters(path: Path) -> dict:
    """The ``parameters:`` section of a ZenML run config, with a clear error when the file is wrong."""
    from jude.config import ConfigFileError, read_parameters

    try:
        return read_parameters(path)
    except ConfigFileError as e:
        raise ConfigError(str(e)) from e


def validate(pipeline: str, params: dict, path: Path) -> None:
    """Fail before any step runs: every section is checked against jude.config."""
    from pydantic import ValidationError

    import jude.config as C

    sections: dict[str, type] = {}
    if pipeline == "train":
        sections = {name: field.annotation for name, field in C.TrainPipelineConfig.model_fields.items()}
    elif pipeline == "deploy":
        sections = {"deploy": getattr(C, "DeployConfig", None), "registry": C.RegistryConfig,
                    "eval": C.EvalConfig, "promotion": getattr(C, "PromotionConfig", None)}
    elif pipeline == "monitor":
        sections = {"monitor": getattr(C, "MonitorConfig", None), "data": C.DataConfig, "registry": C.RegistryConfig}
    problems = []
    for name, value in params.items():
        model = sections.get(name)
        if pipeline == "train" and name not in sections:
            problems.append(f"unknown parameter section {name!r}; expected one of {sorted(sections)}")
            continue
        if model is None or not isinstance(value, dict):
            continue
        try:
            model.model_validate(value)
        except ValidationError as e:
            problems += [f"{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
                         for err in e.errors()]
    if problems:
        raise ConfigError(f"config file {path}:\n  " + "\n  ".join(problems))


def get_pipeline(name: str):
    if name == "train":
        from pipelines.train import train_pipeline

        return train_pipeline
    if name == "deploy":
        from pipelines.deploy import deploy_pipeline

        return deploy_pipeline
    if name == "monitor":
        from pipelines.monitor import monitor_pipeline

        return monitor_pipeline
    raise ConfigError(f"unknown pipeline {name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", choices=sorted(DEFAULT_CONFIGS), default="train")
    parser.add_argument("--config", type=Path, help="YAML run config (default: configs/<pipeline>.yaml)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every step")
    parser.add_argument("--dry-run", action="store_true", help="deploy: render manifests, touch no cluster")
    parser.add_argument("--output", type=Path, help="deploy --dry-run: where the manifests go")
    args = parser.parse_args(argv)

    config = (args.config or DEFAULT_CONFIGS[args.pipeline]).resolve()
    try:
        params = load_parameters(config)
        validate(args.pipeline, params, config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    sys.path.insert(0, str(ROOT))
    from pipelines.stack import ensure_local_stack

    tracking = ensure_local_stack()
    print(f"jude: pipeline={args.pipeline} config={config} mlflow={tracking}")
    extra = {}
    if args.pipeline == "deploy":
        if args.dry_run:
            extra["dry_run"] = True
        if args.output:
            extra["output_dir"] = str(args.output.resolve())
    pipeline = get_pipeline(args.pipeline).with_options(config_path=str(config), enable_cache=not args.no_cache)
    pipeline(**extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
