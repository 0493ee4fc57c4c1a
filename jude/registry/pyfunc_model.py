"""The MLflow "model from code" file: MLflow copies it next to each logged version and runs it at load time.

Logging the pyfunc by file path (instead of a pickled Python object) keeps the
registry free of CloudPickle payloads; loading needs the ``jude`` package installed.
"""

import mlflow

from jude.registry.mlflow_registry import JudeEmbedderPyfunc

mlflow.models.set_model(JudeEmbedderPyfunc())
