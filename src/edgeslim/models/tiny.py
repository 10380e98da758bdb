"""Tiny random models and a tiny tokenizer built in code, for tests and quick checks (no downloads)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .hf import save_model, transformers

# A small English sample so the tiny WordPiece vocabulary covers common words of the GLUE tasks.
_SAMPLE = """
the a an and or but not no is are was were be been it its this that these those to of in on at for with
by from as movie film story good bad great best worst love hate funny boring fun dull charming
beautiful ugly acting actors director script plot characters performance performances
i you he she we they my your his her our their me him us them what who which when where why how
very more most less much many some any all one two three first new old just only also even so too
than then there here up down out over into about after before while because if would could should
can will may might must do does did done have has had make made get got see seen know think time
year years people way day man men woman women life world work question answer sentence entailment
paraphrase said says company percent new york government state city country . , ' ! ? - s n't 's
"""


def tiny_tokenizer(out_dir: str | Path | None = None, vocab_size: int = 400) -> Any:
    """A BERT WordPiece tokenizer trained on a built-in sample (deterministic, < 1 s)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special, min_frequency=1)
    words = _SAMPLE.split()
    tok.train_from_iterator([" ".join(words)] * 4 + words, trainer=trainer)
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tf = transformers()
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=512,
    )
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast


def tiny_bert_config(*, layers: int = 2, hidden: int = 32, heads: int = 4, ffn: int = 64, vocab: int = 400,
                     max_positions: int = 128, num_labels: int = 2, **kw: Any) -> Any:
    """A BertConfig small enough that a forward pass takes microseconds."""
    tf = transformers()
    return tf.BertConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=max_positions, num_labels=num_labels,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager", **kw,
    )


def tiny_bert(kind: str | None = "classification", seed: int = 0, **cfg_kw: Any) -> Any:
    """A tiny random BERT with the head for `kind` ("classification", "regression", "qa", None)."""
    import torch

    from .hf import HEADS

    tf = transformers()
    torch.manual_seed(seed)
    if kind == "regression":
        cfg_kw.setdefault("num_labels", 1)
        cfg_kw.setdefault("problem_type", "regression")
    cfg = tiny_bert_config(**cfg_kw)
    model = getattr(tf, HEADS[kind]).from_config(cfg, attn_implementation="eager")
    return model.eval()


def tiny_vit(num_labels: int = 10, image_size: int = 32, seed: int = 0, **kw: Any) -> Any:
    """A tiny random ViT image classifier."""
    import torch

    tf = transformers()
    torch.manual_seed(seed)
    cfg = tf.ViTConfig(image_size=image_size, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64, num_labels=num_labels, **kw)
    return tf.ViTForImageClassification(cfg).eval()


def save_tiny_bert(out_dir: str | Path, kind: str | None = "classification", seed: int = 0, **cfg_kw: Any) -> Path:
    """Write a tiny BERT plus its tiny tokenizer as an HF folder; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer()
    cfg_kw.setdefault("vocab", len(tok))
    model = tiny_bert(kind, seed=seed, **cfg_kw)
    return save_model(model, out, tok)
