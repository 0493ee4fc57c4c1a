"""The curriculum laid out on optimiser steps (pure Python, no model)."""

from jude.config import LossConfig
from jude.training.curriculum import phase_at, plan_curriculum


def test_plan_curriculum_by_fraction_covers_all_steps_in_order():
    cfg = LossConfig(
        curriculum=[
            {"name": "relevance", "sources": ["relevance"], "steps_fraction": 0.3},
            {"name": "mixed", "sources": ["relevance", "engagement"], "steps_fraction": 0.7},
        ]
    )
    plan = plan_curriculum(cfg.curriculum, steps_per_epoch=10, total_steps=95)
    assert [(s.name, s.start, s.end) for s in plan] == [("relevance", 0, 28), ("mixed", 28, 95)]
    assert phase_at(plan, 27).sources == ("relevance",)
    assert phase_at(plan, 28).sources == ("relevance", "engagement")


def test_plan_curriculum_by_epochs_is_cut_by_max_steps():
    cfg = LossConfig(
        curriculum=[
            {"name": "relevance", "sources": ["relevance"], "epochs": 1},
            {"name": "mixed", "sources": ["relevance", "engagement"], "epochs": 2},
            {"name": "late", "sources": ["engagement"], "epochs": 1},
        ]
    )
    full = plan_curriculum(cfg.curriculum, steps_per_epoch=10)
    assert [(s.start, s.end) for s in full] == [(0, 10), (10, 30), (30, 40)]
    cut = plan_curriculum(cfg.curriculum, steps_per_epoch=10, total_steps=25)
    assert [(s.name, s.start, s.end) for s in cut] == [("relevance", 0, 10), ("mixed", 10, 25)]
    assert [s.name for s in plan_curriculum([], 10, 50)] == ["all"]
