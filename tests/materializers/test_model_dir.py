"""The model directory is stored as files in the artifact store, by our materializer (no fallback)."""

from jude.modeling.model_dir import ModelDir


def test_steps_register_the_model_dir_materializer():
    from zenml.materializers.materializer_registry import materializer_registry

    import steps  # noqa: F401
    from materializers.model_dir import ModelDirMaterializer

    assert materializer_registry[ModelDir] is ModelDirMaterializer


def test_save_copies_the_directory_and_load_reads_it_back(tmp_path, zenml_home):
    from materializers.model_dir import ModelDirMaterializer

    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "jude.json").write_text('{"base_model": "minilm", "pooling": "mean", "dimension": 384}')
    store = tmp_path / "artifact"
    store.mkdir()
    m = ModelDirMaterializer(uri=str(store))
    m.save(ModelDir(str(src)))
    loaded = m.load(ModelDir)
    assert (tmp_path / "artifact" / "model" / "config.json").exists()
    assert sorted(p.name for p in __import__("pathlib").Path(loaded.path).iterdir()) == ["config.json", "jude.json"]
    assert m.extract_metadata(loaded)["dimension"] == 384
