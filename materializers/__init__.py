"""ZenML materializers for jude's own artifact types (no pickle fallback)."""

from materializers.model_dir import ModelDirMaterializer

__all__ = ["ModelDirMaterializer"]
