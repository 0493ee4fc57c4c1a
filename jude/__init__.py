"""jude: fine-tuned LLM embeddings for matching jobs with members.

The core library. Plain Python; it never imports zenml, nor the ZenML layer, which lives in
``zenml_glue/``, ``steps/``, ``pipelines/`` and ``materializers/``.
"""

__version__ = "0.1.0"
