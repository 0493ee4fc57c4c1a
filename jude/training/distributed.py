"""In-batch negatives across data-parallel ranks: gather every rank's embeddings (with gradients) and ids.

With N ranks of B pairs each, InfoNCE on one rank sees B - 1 in-batch negatives.
Gathering the member and job embeddings of all ranks gives every query the
N x B - 1 negatives of the global batch, at the cost of one all-gather of
(B, D) tensors per tower. This is what Tevatron's ``negatives_x_device`` and
sentence-transformers' ``gather_across_devices`` do; jude's HF Trainer path
turns it on with ``scale.gather_across_devices`` (default on, a no-op on one rank).

How the gradients come out right. Every rank computes the *same* global loss L
on the gathered batch. The functional ``all_gather_single`` is
differentiable: its backward sums, over ranks, the gradient each rank computed
for a slice, so rank r's local embeddings receive N x dL/dx_r. DDP and
DeepSpeed then *average* parameter gradients over the N ranks, which divides
that factor out: every rank steps with exactly dL/dθ, the gradient of a
single process holding the whole global batch (``tests/training/test_distributed.py``
checks this on two gloo processes).

The ids (member, job, hard-negative job) travel with ``all_gather_object`` so
false-negative masking (the same job on two ranks, a job that is another
rank's positive of this member) works on the global batch as it does on a local one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Ranks in the default process group; 1 when torch.distributed is not initialised."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) of every rank along dim 0 in rank order, differentiably.

    Every rank must pass the same shape (the HF Trainer path drops the last,
    short batch for this); a mismatch raises naming each rank's shape rather
    than hanging in the collective.
    """
    if world_size() == 1:
        return x
    _check_same_shapes(gather_objects([tuple(x.shape)]))
    return _all_gather(x)


def _check_same_shapes(shapes: Sequence[Any]) -> None:
    """``shapes``: one entry per rank (a shape, or a tuple of shapes)."""
    if len(set(shapes)) != 1:
        raise ValueError(
            f"cannot gather in-batch negatives across ranks: the ranks hold tensors of different "
            f"shapes {dict(enumerate(shapes))}; every rank needs full batches "
            f"(dataloader_drop_last) of the same number of hard negatives"
        )


def _all_gather(x: Tensor) -> Tensor:
    from torch.distributed._functional_collectives import all_gather_single

    # Differentiable: the backward reduce-scatters (sums) each slice's gradient back to its rank.
    return all_gather_single(x.contiguous(), 0, dist.group.WORLD)


def gather_objects(items: Sequence[Any]) -> list[Any]:
    """Concatenate a per-rank list (ids) of every rank, in rank order."""
    n = world_size()
    if n == 1:
        return list(items)
    parts: list[Any] = [None] * n
    dist.all_gather_object(parts, list(items))
    return [x for part in parts for x in part]


@dataclass
class GlobalBatch:
    """The two towers (and hard negatives) of every rank, in rank order; ``world_size`` ranks of ``local_size`` rows."""

    q: Tensor
    d: Tensor
    hard: Tensor | None
    member_ids: list[Any]
    job_ids: list[Any]
    negative_ids: list[Any] | None
    world_size: int
    local_size: int


def gather_batch(
    q: Tensor,
    d: Tensor,
    hard: Tensor | None,
    member_ids: Sequence[Any],
    job_ids: Sequence[Any],
    negative_ids: Sequence[Sequence[Any]] | None,
) -> GlobalBatch:
    """All ranks' (B, D) members, (B, D) jobs, (B, K, D) hard negatives and their ids, as one global batch.

    One object all-gather per step carries every rank's shapes and ids together;
    then one tensor all-gather per tower.
    """
    if (hard is None) != (negative_ids is None):
        raise ValueError("hard negatives and their ids come together: got one without the other")
    n = world_size()
    if n == 1:
        return GlobalBatch(
            q=q,
            d=d,
            hard=hard,
            member_ids=list(member_ids),
            job_ids=list(job_ids),
            negative_ids=[list(r) for r in negative_ids] if negative_ids is not None else None,
            world_size=1,
            local_size=q.shape[0],
        )
    tensors = [t for t in (q, d, hard) if t is not None]
    local = (
        tuple(tuple(t.shape) for t in tensors),
        list(member_ids),
        list(job_ids),
        [list(r) for r in negative_ids] if negative_ids is not None else None,
    )
    parts: list[Any] = [None] * n
    dist.all_gather_object(parts, local)
    _check_same_shapes([p[0] for p in parts])
    gq, gd, *gh = (_all_gather(t) for t in tensors)
    return GlobalBatch(
        q=gq,
        d=gd,
        hard=gh[0] if gh else None,
        member_ids=[m for p in parts for m in p[1]],
        job_ids=[j for p in parts for j in p[2]],
        negative_ids=[r for p in parts for r in p[3]] if negative_ids is not None else None,
        world_size=n,
        local_size=q.shape[0],
    )
