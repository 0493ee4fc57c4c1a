"""The deployment record: what was deployed, where, and how it went (a ZenML artifact)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class DeploymentRecord(BaseModel):
    """One deployment: target, address, model version. Plain pydantic, so ZenML stores it as JSON."""

    target: Literal["local", "kubernetes"]
    status: Literal["deployed", "rendered", "skipped"] = Field(
        description="deployed: serving; rendered: dry run (manifests written); skipped: gate did not promote."
    )
    model_uri: str
    model_version: str | None = None
    address: str | None = Field(None, description="http://host:port (local) or the Service's cluster DNS name.")
    pid: int | None = Field(None, description="Server process id (local).")
    replaced_pid: int | None = Field(
        None, description="The previous local server, stopped after the new one was ready."
    )
    namespace: str | None = None
    manifests: list[str] = Field(default_factory=list, description="Objects applied or files written.")
    actions: dict[str, str] = Field(default_factory=dict, description="Object -> created | patched.")
    smoke: dict = Field(default_factory=dict, description="The smoke request: latency, dimension, status.")
    detail: str = ""
    created_at: str = Field(default_factory=_now)
