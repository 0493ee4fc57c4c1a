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
    n = world_size()
    if n == 1:
        return x
    shapes: list[Any] = [None] * n
    dist.all_gather_object(shapes, tuple(x.shape))
    if len(set(shapes)) != 1:
        raise ValueError(f"cannot gather in-batch negatives across ranks: the ranks hold tensors of different "
                         f"shapes {dict(enumerate(shapes))}; every rank needs full batches "
                         f"(dataloader_drop_last) of the same number of hard negatives")
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


def gather_batch(q: Tensor, d: Tensor, hard: Tensor | None, member_ids: Sequence[Any], job_ids: Sequence[Any],
                 negative_ids: Sequence[Sequence[Any]] | None) -> GlobalBatch:
    """All ranks' (B, D) members, (B, D) jobs, (B, K, D) hard negatives and their ids, as one global batch."""
    if (hard is None) != (negative_ids is None):
        raise ValueError("hard negatives and their ids come together: got one without the other")
    return GlobalBatch(
        q=gather_with_grad(q), d=gather_with_grad(d),
        hard=gather_with_grad(hard) if hard is not None else None,
        member_ids=gather_objects(member_ids), job_ids=gather_objects(job_ids),
        negative_ids=gather_objects([list(r) for r in negative_ids]) if negative_ids is not None else None,
        world_size=world_size(), local_size=q.shape[0])
