"""A saved jude model directory, as pipeline steps pass it around: :class:`ModelDir`.

The format itself (``jude.json``, :class:`EmbedderMeta`, the sentence-transformers
config files) and where base weights are found (:func:`resolve_model_path`) are
:mod:`jude.modeling.model_format`, re-exported here. Importing this module imports
neither torch nor transformers, so the ZenML materializer and the registry can read
a model directory's metadata without loading a deep-learning stack;
:meth:`ModelDir.load` imports :class:`jude.modeling.embedder.Embedder` (torch) when
it is called. The dependency runs one way: ``model_dir`` -> ``embedder`` ->
``model_format``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jude.modeling.model_format import (
    ADAPTER_DIR,
    DECODER_MODEL_TYPES,
    META_FILE,
    EmbedderMeta,
    ModelLoadError,
    is_decoder_config,
    meta_from_sentence_transformers,
    packaged_minilm_path,
    resolve_model_path,
    write_sentence_transformers_config,
)

if TYPE_CHECKING:
    from jude.modeling.embedder import Embedder

__all__ = [
    "ADAPTER_DIR",
    "DECODER_MODEL_TYPES",
    "EmbedderMeta",
    "META_FILE",
    "ModelDir",
    "ModelLoadError",
    "is_decoder_config",
    "meta_from_sentence_transformers",
    "packaged_minilm_path",
    "resolve_model_path",
    "write_sentence_transformers_config",
]


@dataclass(frozen=True)
class ModelDir:
    """A saved model directory: what pipeline steps pass around instead of weights in memory."""

    path: str

    @property
    def meta(self) -> EmbedderMeta:
        return EmbedderMeta.from_dict(json.loads((Path(self.path) / META_FILE).read_text()))

    def load(self, device: str | None = None) -> Embedder:
        """The model itself (imports torch and transformers, so only when called)."""
        from jude.modeling.embedder import Embedder

        return Embedder.load(self.path, device=device)
