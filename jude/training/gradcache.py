"""GradCache: contrastive batches larger than memory, with exactly the same gradients.

An in-batch contrastive loss couples every pair in the batch, so the batch can
not simply be split into micro-batches (gradient accumulation would shrink the
set of negatives). GradCache (Gao, Zhang, Han, Callan, "Scaling Deep
Contrastive Learning Batch Size under Memory Limited Setup", RepL4NLP 2021)
splits the *backward* pass instead:

1. embed all texts chunk by chunk **without** an autograd graph (memory: one
   chunk of activations at a time, plus the (B, D) embeddings);
2. compute the loss on those embeddings, made leaf tensors that require
   grad, and backward: this gives d loss / d embedding for every text, the
   *gradient cache* (and the gradients of any parameters of the loss itself,
   such as a learned temperature);
3. re-embed each chunk **with** a graph and backpropagate its cached gradient
   (``emb.backward(grad)``): by the chain rule the model's parameter gradients
   add up to those of the full-batch loss.

Dropout makes step 3 a different function from step 1 unless it draws the same
random numbers, so each chunk's RNG state is captured before step 1 and
restored for step 3 (the paper's ``RandContext``).

:func:`gradcache_step` takes a query tower and a document tower;
:func:`gradcache_shared_step` takes one list of texts for towers that share
their weights (jude's), so a text that appears on both sides is embedded once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor


class RandContext:
    """Captures the torch RNG state (CPU and every CUDA device) now; replays it inside ``with``.

    The global RNG is untouched afterwards (``torch.random.fork_rng``), so the
    replay does not shift the random numbers of whatever runs next.
    """

    def __init__(self) -> None:
        self.cpu_state = torch.get_rng_state()
        self.cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        self._fork: Any = None

    def __enter__(self) -> RandContext:
        devices = list(range(len(self.cuda_states)))
        self._fork = torch.random.fork_rng(devices=devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        if self.cuda_states:
            torch.cuda.set_rng_state_all(self.cuda_states)
        return self

    def __exit__(self, *exc: object) -> None:
        self._fork.__exit__(*exc)
        self._fork = None


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _embed_without_graph(
    embed: Callable[[Sequence[Any]], Tensor], chunks: list[Sequence[Any]], name: str
) -> tuple[Tensor, list[RandContext]]:
    """Pass 1 for one tower: (n, D) embeddings, no graph, and each chunk's RNG state."""
    reps, states = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandContext())
            emb = embed(chunk)
            if not isinstance(emb, Tensor) or emb.ndim != 2 or emb.shape[0] != len(chunk):
                shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
                raise ValueError(
                    f"embed_{name} must return a ({len(chunk)}, D) tensor for a chunk of "
                    f"{len(chunk)} texts, got {shape}"
                )
            reps.append(emb)
    return torch.cat(reps), states


def _backward_with_cache(
    embed: Callable[[Sequence[Any]], Tensor], chunks: list[Sequence[Any]], states: list[RandContext], grad: Tensor
) -> None:
    """Pass 2 for one tower: re-embed each chunk with a graph and push its cached gradient in."""
    start = 0
    for chunk, state in zip(chunks, states):
        with state:
            emb = embed(chunk)  # (c, D), same dropout masks as in pass 1
        emb.backward(gradient=grad[start : start + len(chunk)].to(emb.dtype))
        start += len(chunk)


def gradcache_step(
    embed_q: Callable[[Sequence[Any]], Tensor],
    embed_d: Callable[[Sequence[Any]], Tensor],
    q_texts: Sequence[Any],
    d_texts: Sequence[Any],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    chunk_size: int,
) -> float:
    """One contrastive step with cached embedding gradients; returns the loss value.

    Args:
        embed_q: texts -> (len(texts), D) tensor with an autograd graph (the
            member tower; may be the same callable as ``embed_d``).
        embed_d: the job tower, the same contract.
        q_texts: the B query texts (or any items ``embed_q`` accepts).
        d_texts: the document texts (B positives, or more: e.g. B positives
            followed by B*K hard negatives; ``loss_fn`` knows the layout).
        loss_fn: (Q_emb, D_emb) -> scalar loss on the whole batch, e.g.
            ``lambda q, d: info_nce(q, d, 0.05)``. It may have parameters of its
            own (a learned temperature); they get their gradients too.
        chunk_size: texts per forward pass; memory scales with it, the number of
            negatives does not.

    Gradients are *accumulated* into the parameters' ``.grad`` (as after
    ``loss.backward()``): the caller zeroes them before and calls
    ``optimizer.step()`` after. Gradients equal those of the full-batch loss up
    to floating point, dropout included, provided the embedding functions
    draw random numbers only from torch's RNG.
    """
    if len(q_texts) == 0 or len(d_texts) == 0:
        raise ValueError(
            f"gradcache_step needs texts on both sides, got {len(q_texts)} queries and {len(d_texts)} documents"
        )
    return _gradcache([(embed_q, q_texts, "q"), (embed_d, d_texts, "d")], loss_fn, chunk_size)


def gradcache_shared_step(
    embed: Callable[[Sequence[Any]], Tensor],
    items: Sequence[Any],
    loss_fn: Callable[[Tensor], Tensor],
    chunk_size: int,
) -> float:
    """:func:`gradcache_step` for towers that share their weights: every text of the step embedded once.

    ``items`` are the step's distinct texts (members and jobs alike); ``loss_fn``
    gets their (N, D) embeddings and picks its query and document rows itself.
    A job that is one pair's positive and another's hard negative is embedded
    once, and sorting ``items`` by length makes each chunk pad little.
    """
    if len(items) == 0:
        raise ValueError("gradcache_shared_step needs at least one text, got none")
    return _gradcache([(embed, items, "shared")], loss_fn, chunk_size)


def _gradcache(
    towers: list[tuple[Callable[[Sequence[Any]], Tensor], Sequence[Any], str]],
    loss_fn: Callable[..., Tensor],
    chunk_size: int,
) -> float:
    """The three GradCache passes over one or more towers; ``loss_fn`` takes one (n, D) tensor per tower."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    chunks = [_chunks(items, chunk_size) for _, items, _ in towers]

    # Pass 1: all embeddings, no graph.
    passes = [_embed_without_graph(embed, c, name) for (embed, _, name), c in zip(towers, chunks)]

    # The loss on the full batch, and its gradient w.r.t. every embedding: the cache.
    reps = [r.detach().requires_grad_(True) for r, _ in passes]  # (n, D) per tower
    loss = loss_fn(*reps)
    if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
        raise ValueError("loss_fn must return a scalar tensor that depends on the embeddings")
    loss.backward()

    # Pass 2: chunk by chunk with a graph, replaying the RNG, pushing the cached gradients in.
    for (embed, _, _), c, (_, states), r in zip(towers, chunks, passes, reps):
        grad = r.grad if r.grad is not None else torch.zeros_like(r)
        _backward_with_cache(embed, c, states, grad)
    return float(loss.detach())
