import pytest

from edgeslim.errors import ModelError
from edgeslim.models.config import normalize_config
from edgeslim.models.hf import check_model_folder, infer_kind, load_model, model_shape
from edgeslim.models.zoo import resolve_model_source


def test_normalized_config_hides_family_names():
    bert = normalize_config({"model_type": "bert", "num_hidden_layers": 6, "hidden_size": 384,
                             "num_attention_heads": 12, "intermediate_size": 1536, "vocab_size": 30522,
                             "max_position_embeddings": 512, "pruned_heads": {"0": [1, 2]}})
    distil = normalize_config({"model_type": "distilbert", "n_layers": 6, "dim": 768, "n_heads": 12,
                               "hidden_dim": 3072, "vocab_size": 30522, "max_position_embeddings": 512})
    vit = normalize_config({"model_type": "vit", "num_hidden_layers": 12, "hidden_size": 192,
                            "num_attention_heads": 3, "intermediate_size": 768, "image_size": 224, "patch_size": 16})
    assert (bert.layers, bert.hidden, bert.heads, bert.ffn, bert.head_dim) == (6, 384, 12, 1536, 32)
    assert bert.heads_per_layer == (10, 12, 12, 12, 12, 12) and bert.layer_heads(0) == 10
    assert (distil.layers, distil.hidden, distil.heads, distil.ffn) == (6, 768, 12, 3072)
    assert vit.is_vision and vit.image_size == 224 and vit.patch_size == 16
    with pytest.raises(ModelError, match="not supported yet"):
        normalize_config({"model_type": "gpt2"})


def test_tiny_model_roundtrip(tiny_bert_dir):
    shape = model_shape(tiny_bert_dir)
    assert (shape.layers, shape.hidden, shape.heads, shape.ffn) == (2, 32, 4, 64)
    m = load_model(tiny_bert_dir, "classification")
    assert type(m).__name__ == "BertForSequenceClassification"
    assert infer_kind(m.config.to_dict()) == "classification"


def test_folder_without_weights_is_a_clear_error(tmp_path, tiny_bert_dir):
    import shutil

    bad = tmp_path / "noweights"
    shutil.copytree(tiny_bert_dir, bad)
    (bad / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="has no weights"):
        check_model_folder(bad)
    with pytest.raises(ModelError, match="has no weights"):
        load_model(bad, "classification")


def test_hub_names_are_refused_offline():
    with pytest.raises(ModelError, match="never downloads from a hub"):
        resolve_model_source("bert-base-uncased")
    with pytest.raises(ModelError, match="Did you mean 'minilm-l6'"):
        resolve_model_source("minilm-l5")


@pytest.mark.realdata
def test_packaged_teacher_loads_offline():
    m = load_model("minilm-l6", None)
    assert sum(p.numel() for p in m.parameters()) == 22_713_216
    assert model_shape("minilm-l6").vocab == 30522
