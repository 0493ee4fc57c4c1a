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

    def __enter__(self) -> "RandContext":
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
    return [items[i:i + size] for i in range(0, len(items), size)]


def _embed_without_graph(embed: Callable[[Sequence[Any]], Tensor], chunks: list[Sequence[Any]],
                         name: str) -> tuple[Tensor, list[RandContext]]:
    """Pass 1 for one tower: (n, D) embeddings, no graph, and each chunk's RNG state."""
    reps, states = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandContext())
            emb = embed(chunk)
            if not isinstance(emb, Tensor) or emb.ndim != 2 or emb.shape[0] != len(chunk):
                shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
                raise ValueError(f"embed_{name} must return a ({len(chunk)}, D) tensor for a chunk of "
                                 f"{len(chunk)} texts, got {shape}")
            reps.append(emb)
    return torch.cat(reps), states


def _backward_with_cache(embed: Callable[[Sequence[Any]], Tensor], chunks: list[Sequence[Any]],
                         states: list[RandContext], grad: Tensor) -> None:
    """Pass 2 for one tower: re-embed each chunk with a graph and push its cached gradient in."""
    start = 0
    for chunk, state in zip(chunks, states):
        with state:
            emb = embed(chunk)  # (c, D), same dropout masks as in pass 1
        emb.backward(gradient=grad[start:start + len(chunk)].to(emb.dtype))
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
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    if len(q_texts) == 0 or len(d_texts) == 0:
        raise ValueError(f"gradcache_step needs texts on both sides, got {len(q_texts)} queries "
                         f"and {len(d_texts)} documents")
    q_chunks, d_chunks = _chunks(q_texts, chunk_size), _chunks(d_texts, chunk_size)

    # Pass 1: all embeddings, no graph.
    q_reps, q_states = _embed_without_graph(embed_q, q_chunks, "q")  # (Q, D)
    d_reps, d_states = _embed_without_graph(embed_d, d_chunks, "d")  # (N, D)

    # The loss on the full batch, and its gradient w.r.t. every embedding: the cache.
    q_reps = q_reps.detach().requires_grad_(True)
    d_reps = d_reps.detach().requires_grad_(True)
    loss = loss_fn(q_reps, d_reps)
    if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
        raise ValueError("loss_fn must return a scalar tensor that depends on the embeddings")
    loss.backward()
    q_grad = q_reps.grad if q_reps.grad is not None else torch.zeros_like(q_reps)
    d_grad = d_reps.grad if d_reps.grad is not None else torch.zeros_like(d_reps)

    # Pass 2: chunk by chunk with a graph, replaying the RNG, pushing the cached gradients in.
    _backward_with_cache(embed_q, q_chunks, q_states, q_grad)
    _backward_with_cache(embed_d, d_chunks, d_states, d_grad)
    return float(loss.detach())
