"""jude: fine-tuned LLM embeddings for matching jobs with members.

The core library. Plain Python; it never imports zenml (the ZenML layer lives in
``steps/``, ``pipelines/`` and ``materializers/``).
"""

__version__ = "0.1.0"
