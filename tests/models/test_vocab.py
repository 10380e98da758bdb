"""Vocabulary pruning on a tiny BERT: same outputs on kept text, standard tokenizer that reloads, clear errors."""
from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from edgeslim.errors import DataError  # noqa: E402
from edgeslim.models.hf import transformers  # noqa: E402
from edgeslim.models.tiny import tiny_bert, tiny_tokenizer  # noqa: E402
from edgeslim.models.vocab import collect_vocab, prune_vocab  # noqa: E402

TEXTS = ["the movie was good", "a boring film , but charming actors !", "I love this story ."]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_collect_vocab_keeps_specials_and_used_ids(tok):
    keep = collect_vocab(tok, TEXTS)
    assert keep == sorted(keep)
    assert set(tok.all_special_ids) <= set(keep)
    used = {i for row in tok(TEXTS, add_special_tokens=False)["input_ids"] for i in row}
    assert set(keep) == used | set(tok.all_special_ids)


def test_collect_vocab_empty_corpus_fails(tok):
    with pytest.raises(DataError, match="empty"):
        collect_vocab(tok, [])
    with pytest.raises(DataError, match="empty"):
        collect_vocab(tok, ["  ", ""])


def test_prune_vocab_same_outputs_and_tokens(tok, tmp_path):
    model = tiny_bert("classification", vocab=len(tok))
    ref = copy.deepcopy(model)
    keep = collect_vocab(tok, TEXTS)
    new_model, new_tok = prune_vocab(model, tok, keep)
    old_to_new = {o: n for n, o in enumerate(keep)}
    # token-by-token agreement on kept text
    for s in TEXTS:
        assert [old_to_new[i] for i in tok(s)["input_ids"]] == new_tok(s)["input_ids"]
    assert new_model.config.vocab_size == len(keep) == len(new_tok)
    removed = (len(tok) - len(keep)) * model.config.hidden_size
    assert sum(p.numel() for p in ref.parameters()) - sum(p.numel() for p in new_model.parameters()) == removed
    a = tok(TEXTS, padding=True, return_tensors="pt")
    b = new_tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(ref(**a).logits, new_model(**b).logits, atol=1e-6)
    # saved folder reloads with plain transformers (no edgeslim)
    new_model.save_pretrained(tmp_path)
    new_tok.save_pretrained(tmp_path)
    tf = transformers()
    tok2 = tf.AutoTokenizer.from_pretrained(tmp_path)
    model2 = tf.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert tok2(TEXTS)["input_ids"] == new_tok(TEXTS)["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model2(**tok2(TEXTS, padding=True, return_tensors="pt")).logits,
                              ref(**a).logits, atol=1e-6)


def test_unseen_words_fall_back_to_kept_pieces_or_unk(tok):
    model = tiny_bert("classification", vocab=len(tok))
    keep = collect_vocab(tok, ["the movie"])
    _, new_tok = prune_vocab(model, tok, keep)
    ids = new_tok("the worst movie zzzq")["input_ids"]
    toks = new_tok.convert_ids_to_tokens(ids)
    assert toks == ["[CLS]", "the", "[UNK]", "movie", "[UNK]", "[SEP]"]


def test_keep_chars_keeps_single_characters(tok):
    keep = collect_vocab(tok, ["the"], keep_chars=True)
    vocab = tok.get_vocab()
    assert vocab["a"] in keep and vocab["##s"] in keep


def test_tied_lm_head_shrinks_with_embeddings(tok):
    tf = transformers()
    cfg = tiny_bert("classification", vocab=len(tok)).config
    mlm = tf.BertForMaskedLM(cfg).eval()
    keep = collect_vocab(tok, TEXTS)
    ref = copy.deepcopy(mlm)
    mlm, new_tok = prune_vocab(mlm, tok, keep)
    dec = mlm.get_output_embeddings()
    assert dec.weight.shape[0] == len(keep)
    assert dec.weight is mlm.get_input_embeddings().weight
    a = tok(TEXTS[0], return_tensors="pt")
    b = new_tok(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(ref(**a).logits[..., keep], mlm(**b).logits, atol=1e-5)


def test_bad_keep_ids(tok):
    model = tiny_bert("classification", vocab=len(tok))
    with pytest.raises(DataError, match="no token ids"):
        prune_vocab(model, tok, [])
    with pytest.raises(DataError, match="outside"):
        prune_vocab(model, tok, [0, len(tok) + 5])
