"""The ZenML glue: what the steps, the pipelines and ``run.py`` share that is neither core logic nor wiring.

- :mod:`zenml_glue.stack`: the local ZenML stack (``jude-local``: the MLflow experiment tracker and model
  registry on the project's tracking store), registered idempotently; the tracker's name the steps ask for.
- :mod:`zenml_glue.model_stages`: the ZenML Model version stages kept in step with the MLflow aliases
  (``champion`` -> production, ``challenger`` -> staging); ``make sync-stages``.
- :mod:`zenml_glue.stop`: SIGTERM / SIGINT stop the whole run (every pipeline's ``on_start`` hook), and a run
  that ``kill -9`` left behind is marked failed by the next one.

It sits between ``jude/`` (the core library, which never imports zenml nor this package) and ``steps/`` and
``pipelines/``, which import it; it imports neither of them (``tests/test_layers.py``).
"""
