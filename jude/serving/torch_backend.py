"""The torch backend: the embedder's own backbone and pooling, in eager PyTorch.

It sits below both :mod:`jude.serving.engine` (its default backend, re-exported
there) and :mod:`jude.serving.onnx_backend` (whose export check compares ONNX
Runtime against this very forward), so neither imports the other for it.
"""

from __future__ import annotations

import numpy as np
import torch

from jude.modeling.embedder import Embedder
from jude.modeling.pooling import pool


class TorchBackend:
    """The embedder's own backbone and pooling, in eager PyTorch (on its device and dtype).

    ``forward``: padded ids and mask (B, T) int64 -> pooled, not yet normalised (B, D) float32.
    """

    name = "torch"

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    @torch.inference_mode()
    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        device = self.embedder.device
        ids = torch.from_numpy(input_ids).to(device)
        mask = torch.from_numpy(attention_mask).to(device)
        hidden = self.embedder.backbone(input_ids=ids, attention_mask=mask)
        hidden = hidden.last_hidden_state if hasattr(hidden, "last_hidden_state") else hidden[0]  # (B, T, H)
        return pool(hidden, mask, self.embedder.meta.pooling).float().cpu().numpy()  # (B, D)
