"""jude's entry point: pick a pipeline, validate its YAML, bootstrap the local stack, run.

python run.py --pipeline train [--config configs/train.yaml] [--no-cache]
python run.py --pipeline deploy [--config configs/deploy_local.yaml] [--dry-run --output DIR]
python run.py --pipeline monitor [--config configs/monitor.yaml]
python run.py --pipeline bootstrap [--config configs/bootstrap.yaml]
python run.py --pipeline ranker [--config configs/ranker.yaml]
JUDE_TEAM=1 python run.py ...   (the team's MLflow and ZenML servers of configs/team.yaml: docs/team.md)

The train pipeline's last line says what was registered: "registered ... as champion", "as challenger; vN stays
champion" (the gate of `--pipeline deploy` compares them), "as challenger only, NO CHAMPION" (with the version's
promotion tag and how to promote it by hand), or "NOTHING REGISTERED" (no candidate passed the promotion rule
against the base model on the validation members, with the figures).

Exit codes: 0 done; 2 bad input (a config, data file or model that jude refuses;
the error is the last line, the traceback only with --debug); 1 any other
failure; 130 / 143 stopped by SIGINT / SIGTERM (the ZenML and MLflow runs are
marked failed and nothing is registered half-way).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jude.config import PipelineConfig

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()  # before zenml / transformers are imported

from zenml_glue import stop  # noqa: E402  (imports neither zenml nor mlflow)

DEFAULT_CONFIGS = {
    "train": ROOT / "configs" / "train.yaml",
    "deploy": ROOT / "configs" / "deploy_local.yaml",
    "monitor": ROOT / "configs" / "monitor.yaml",
    "bootstrap": ROOT / "configs" / "bootstrap.yaml",
    "ranker": ROOT / "configs" / "ranker.yaml",
}


class ConfigError(ValueError):
    """A run config that run.py refuses before any step runs; the message names the file, field and value."""


def load_config(pipeline: str, path: Path) -> PipelineConfig:
    """The run config at ``path``, checked whole before any step runs (and before ZenML is imported).

    Its top-level keys must be ZenML run-config keys, and its ``parameters:`` must
    validate against the pipeline's model in ``jude.config.PIPELINE_CONFIGS``: every
    section, every field, and the rules that span sections.
    """
    from jude.config import ConfigFileError, read_pipeline_config

    try:
        return read_pipeline_config(pipeline, path)
    except ConfigFileError as e:
        raise ConfigError(str(e)) from e


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
    if name == "bootstrap":
        from pipelines.bootstrap import bootstrap_pipeline

        return bootstrap_pipeline
    if name == "ranker":
        from pipelines.ranker import ranker_pipeline

        return ranker_pipeline
    raise ConfigError(f"unknown pipeline {name!r}")


class _WithoutTraceback(logging.Filter):
    """Drops the traceback that ZenML's local orchestrator logs with a failed step.

    main() reports the error itself: a named error as the last line (its
    traceback with --debug), anything else with Python's traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def exit_code_for(error: BaseException) -> int | None:
    """The exit code for an error whose message says what is wrong and where, or None for anything else.

    jude's own errors name the file, field, row or value. Those that are a
    ``ValueError``, and a missing file, are bad input (2); the others
    (``DriftAlert``, ``PromotionError``, ...) are a run that failed (1). Any
    other error is unexpected, and keeps its traceback.
    """
    if isinstance(error, FileNotFoundError):
        return 2
    if type(error).__module__.split(".")[0] != "jude":
        return None
    return 2 if isinstance(error, ValueError) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", choices=sorted(DEFAULT_CONFIGS), default="train")
    parser.add_argument("--config", type=Path, help="YAML run config (default: configs/<pipeline>.yaml)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every step")
    parser.add_argument("--dry-run", action="store_true", help="deploy: render manifests, touch no cluster")
    parser.add_argument("--output", type=Path, help="deploy --dry-run: where the manifests go")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failed run")
    args = parser.parse_args(argv)

    from jude.team import TeamError, apply_team_env, tracking_failure

    try:
        team = apply_team_env()  # JUDE_TEAM=1: the team's servers (configs/team.yaml), before zenml is imported
    except TeamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stop.install()
    if not args.debug:
        logging.getLogger("zenml.orchestrators.local.local_orchestrator").addFilter(_WithoutTraceback())
    try:
        return run_pipeline(args)
    except stop.RunStopped as e:
        try:
            stop.fail_stopped_run()
        except Exception as cleanup_error:  # the exit code still says the run was stopped
            print(f"jude: could not mark the stopped run failed: {cleanup_error!r}", file=sys.stderr)
        sys.stdout.flush()
        print(f"jude: stopped by {e.signame}; the run is marked failed", file=sys.stderr)
        return e.exit_code
    except Exception as e:
        lost = tracking_failure(e, team)  # the tracking server went away during the run
        if lost is not None:
            if args.debug:
                traceback.print_exc()
            sys.stdout.flush()
            print(f"error: {lost}", file=sys.stderr)
            return 1
        code = exit_code_for(e)
        if code is None:
            raise
        if args.debug:
            traceback.print_exc()
        sys.stdout.flush()  # ZenML's log lines first: the error is the last line, also when both go to one pipe
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return code


def run_pipeline(args: argparse.Namespace) -> int:
    """Validate the config, bootstrap the stack, run the pipeline; errors and signals are main()'s."""
    config = (args.config or DEFAULT_CONFIGS[args.pipeline]).resolve()
    try:
        load_config(args.pipeline, config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from jude.registry.mlflow_registry import fail_stale_runs
    from jude.team import load_team_config, preflight, team_mode
    from zenml_glue.stack import EXPERIMENT, ensure_local_stack

    if team_mode():  # both servers answer and reach their databases, before any step runs
        team = load_team_config()
        preflight(team)
        from zenml_glue.team import ensure_team_stack

        tracking = ensure_team_stack(team)
    else:
        tracking = ensure_local_stack()
    print(f"jude: pipeline={args.pipeline} config={config} mlflow={tracking}")
    for run_id in fail_stale_runs(EXPERIMENT, tracking):  # left RUNNING by a run that was killed (kill -9)
        print(f"jude: MLflow run {run_id} was left RUNNING by a process that is gone; marked KILLED")
    extra = {}
    if args.pipeline == "deploy":
        if args.dry_run:
            extra["dry_run"] = True
        if args.output:
            extra["output_dir"] = str(args.output.resolve())
    pipeline = get_pipeline(args.pipeline).with_options(config_path=str(config), enable_cache=not args.no_cache)
    run = pipeline(**extra)
    if args.pipeline == "train":
        outcome = training_outcome(run)
        sys.stdout.flush()
        print(outcome or "jude: the run left no registration record (see the register_embedder step's log)")
    return 0


def training_outcome(run) -> str | None:
    """The train run's last word: what ``register_embedder`` registered, as champion or challenger, and why; or
    why nothing was registered (``jude.registry.champion.training_outcome`` wrote it into the step's output)."""
    if run is None:
        return None
    step = run.steps.get("register_embedder")
    if step is None:
        return None
    out = step.outputs.get("registered_version")
    if isinstance(out, list):
        out = out[0] if out else None
    if out is None:
        return None
    return out.load().get("outcome")


if __name__ == "__main__":
    sys.exit(main())
