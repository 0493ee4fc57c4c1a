"""What the HF Trainer subprocess tests share: a free port, and a tiny training run a child process calls.

A child (``python -c`` or under ``torchrun``, with this directory on ``PYTHONPATH``)
runs ``train_tiny(base, out, result, ...)``: 16 positive pairs from a small
synthetic marketplace, a tiny decoder at ``base``, batch 4, then rank 0 writes
``{"history", "stats"}`` to ``result``.
"""

from __future__ import annotations

import json
import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def train_tiny(base: str, out: str, result: str, max_steps: int, **kwargs: Any) -> None:
    import pandas as pd

    from jude.config import LoRAConfig, ModelConfig, ScaleConfig, SyntheticConfig, TrainConfig
    from jude.data.synthetic import generate_marketplace
    from jude.training.hf_trainer import train_with_hf_trainer

    m = generate_marketplace(SyntheticConfig(n_jobs=40, n_members=30, days=20, impressions_per_member=10, seed=1))
    pairs = pd.DataFrame(
        {
            "member_id": m.members["member_id"].iloc[:16].tolist(),
            "job_id": m.jobs["job_id"].iloc[:16].tolist(),
            "label": 1,
            "grade": 3,
            "source": "relevance",
        }
    )
    model = ModelConfig(
        base_model=base,
        pooling="lasttoken",
        template_style="instruct",
        max_length_job=48,
        max_length_profile=32,
        max_length_resume=48,
    )
    res = train_with_hf_trainer(
        pairs,
        m.jobs,
        m.members,
        model,
        LoRAConfig(r=4, alpha=8),
        TrainConfig(batch_size=4, max_steps=max_steps, learning_rate=1e-3, member_views=["profile"]),
        out,
        scale=ScaleConfig(logging_steps=1),
        show_progress=False,
        **kwargs,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        with open(result, "w") as f:
            json.dump({"history": res.history, "stats": res.stats}, f)
