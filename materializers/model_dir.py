"""Store a :class:`jude.modeling.model_dir.ModelDir` (a sentence-transformers directory) as a ZenML artifact.

The directory is copied into the artifact store as is, so the artifact is itself
a model that sentence-transformers, ``jude serve`` or MLflow can load; no pickle.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import io_utils

from jude.modeling.model_dir import META_FILE, ModelDir

SUBDIR = "model"


class ModelDirMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ModelDir,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: ModelDir) -> None:
        io_utils.copy_dir(data.path, os.path.join(self.uri, SUBDIR), overwrite=True)

    def load(self, data_type: type[Any]) -> ModelDir:
        src = os.path.join(self.uri, SUBDIR)
        if os.path.isdir(src):  # a local artifact store: use it in place
            return ModelDir(src)
        with self.get_temporary_directory(delete_at_exit=False) as tmp:
            io_utils.copy_dir(src, tmp, overwrite=True)
            return ModelDir(tmp)

    def extract_metadata(self, data: ModelDir) -> dict[str, Any]:
        meta_path = os.path.join(data.path, META_FILE)
        if not fileio.exists(meta_path):
            return {}
        meta = json.loads(open(meta_path).read())
        return {
            k: meta[k]
            for k in ("base_model", "pooling", "dimension", "templates_version", "template_style")
            if k in meta
        }
