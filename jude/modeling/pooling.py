"""Token states to one vector per text: the pooling of ``EmbedderMeta.pooling``.

Shared by :class:`jude.modeling.embedder.Embedder` and the serving engine, which
runs the backbone itself and must pool exactly as training did.
"""

from __future__ import annotations

import torch

from jude.config import POOLINGS


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token states (B, T, H) to one vector per text (B, H).

    ``mask`` (B, T) is the attention mask (1 = real token). ``mean`` averages the
    real tokens, ``cls`` takes position 0, ``lasttoken`` takes the last position
    whose mask is 1, so it is right for both left padding (the usual decoder
    set-up) and right padding.
    """
    if mode == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        T = mask.shape[1]
        last = T - 1 - mask.flip(1).long().argmax(1)  # (B,) index of the last real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {mode!r}")
