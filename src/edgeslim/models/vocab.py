"""Vocabulary pruning: keep only the token ids a task corpus uses (plus special tokens).

The word-embedding matrix (and a tied output layer) shrinks to the kept rows, and the tokenizer is rebuilt as a
standard WordPiece `tokenizers` model over the kept vocabulary, renumbered 0..n-1 in the old id order, so the saved
folder reloads with plain `AutoTokenizer` / `AutoModel*` (no edgeslim needed).

Why tokenization of kept text is unchanged: WordPiece is greedy longest-match-first. If every piece of a word's old
tokenization is kept, the greedy search over the smaller vocabulary finds the same piece at every position (anything
longer was not in the old vocabulary either). A word with a dropped piece falls back to shorter kept pieces where
they exist, else to [UNK]; it never crashes and never maps to a shifted id.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import DataError, ModelError


def collect_vocab(tokenizer: Any, texts: Iterable[str], *, keep_chars: bool = False) -> list[int]:
    """Sorted token ids used by `texts` (no truncation) plus every special token id of `tokenizer`.

    `keep_chars` also keeps every single-character piece ("a", "##a", ...), so unseen words fall back to characters
    instead of [UNK] (costs about 2k rows on BERT's vocabulary).
    """
    texts = [t for t in texts if t is not None]
    if not any(t.strip() for t in texts):
        raise DataError("vocabulary corpus is empty: pass the task's text (e.g. its train and dev sentences)")
    ids: set[int] = set()
    chunk = 4096
    for s in range(0, len(texts), chunk):
        enc = tokenizer(texts[s:s + chunk], add_special_tokens=False, truncation=False, padding=False)
        for row in enc["input_ids"]:
            ids.update(row)
    ids.update(special_ids(tokenizer))
    if keep_chars:
        prefix = _wordpiece_prefix(tokenizer)
        for tok, i in tokenizer.get_vocab().items():
            core = tok[len(prefix):] if tok.startswith(prefix) else tok
            if len(core) == 1:
                ids.add(i)
    return sorted(ids)


def special_ids(tokenizer: Any) -> list[int]:
    """Ids of all special and added tokens (these must survive any vocabulary pruning)."""
    ids = set(int(i) for i in tokenizer.all_special_ids)
    ids.update(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}) or {})
    return sorted(ids)


def _wordpiece_prefix(tokenizer: Any) -> str:
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    return state["model"].get("continuing_subword_prefix") or "##"


def check_keep_ids(tokenizer: Any, keep_ids: Sequence[int]) -> list[int]:
    """Validate kept ids (in range, non-empty) and add missing special ids; returns a sorted unique list."""
    n = len(tokenizer)
    keep = sorted(set(int(i) for i in keep_ids))
    if not keep:
        raise DataError("vocabulary pruning got no token ids to keep; build them with collect_vocab(tokenizer, texts)")
    bad = [i for i in keep if not 0 <= i < n]
    if bad:
        raise DataError(f"token ids {bad[:5]} are outside the tokenizer's vocabulary of {n}; "
                        "collect the ids with the model's own tokenizer")
    return sorted(set(keep) | set(special_ids(tokenizer)))


def _remap_tokenizer_json(state: dict[str, Any], old_to_new: dict[int, int]) -> dict[str, Any]:
    """Rewrite a tokenizers JSON state for the kept vocabulary (WordPiece only)."""
    model = state.get("model", {})
    if model.get("type") != "WordPiece":
        raise ModelError(f"vocabulary pruning supports WordPiece tokenizers (BERT family), not {model.get('type')!r}")
    vocab = model["vocab"]
    id_to_tok = {i: t for t, i in vocab.items()}
    model["vocab"] = {id_to_tok[o]: n for o, n in sorted(old_to_new.items(), key=lambda kv: kv[1])}
    for added in state.get("added_tokens") or []:
        added["id"] = old_to_new[added["id"]]
    post = state.get("post_processor")
    posts = post.get("processors", [post]) if post else []
    for p in posts:
        if p.get("type") == "TemplateProcessing":
            for spec in p.get("special_tokens", {}).values():
                spec["ids"] = [old_to_new[i] for i in spec["ids"]]
        elif p.get("type") in ("BertProcessing", "RobertaProcessing"):
            for key in ("sep", "cls"):
                p[key] = [p[key][0], old_to_new[p[key][1]]]
    if state.get("padding"):
        state["padding"]["pad_id"] = old_to_new.get(state["padding"]["pad_id"], 0)
    return state


def prune_tokenizer(tokenizer: Any, keep_ids: Sequence[int]) -> Any:
    """A tokenizer of the same class over the kept vocabulary, renumbered 0..len(keep)-1 in old id order."""
    from .hf import transformers

    keep = check_keep_ids(tokenizer, keep_ids)
    old_to_new = {o: n for n, o in enumerate(keep)}
    tf = transformers()
    with tempfile.TemporaryDirectory(prefix="edgeslim-vocab-") as tmp:
        tokenizer.save_pretrained(tmp)
        tj = Path(tmp) / "tokenizer.json"
        if not tj.is_file():
            raise ModelError("vocabulary pruning needs a fast tokenizer (tokenizer.json); this one has none")
        state = _remap_tokenizer_json(json.loads(tj.read_text(encoding="utf-8")), old_to_new)
        tj.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        vt = Path(tmp) / "vocab.txt"
        if vt.is_file():  # slow-tokenizer vocab file, if the class writes one: keep it consistent
            vt.write_text("".join(t + "\n" for t in state["model"]["vocab"]), encoding="utf-8")
        new_tok = tf.AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    if len(new_tok) != len(keep):
        raise ModelError(f"pruned tokenizer has {len(new_tok)} tokens, expected {len(keep)}; "
                         "its added tokens do not match the kept vocabulary")
    return new_tok


def prune_embeddings(model: Any, keep_ids: Sequence[int]) -> Any:
    """Keep rows `keep_ids` of the word embeddings (and of a tied/untied output layer); edits `model` in place."""
    import torch

    keep = torch.tensor(sorted(set(int(i) for i in keep_ids)), dtype=torch.long)
    emb = model.get_input_embeddings()
    if int(keep.max()) >= emb.num_embeddings:
        raise DataError(f"token id {int(keep.max())} is outside the model's vocabulary of {emb.num_embeddings}")
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = out is not None and out.weight is emb.weight
    old_to_new = {int(o): n for n, o in enumerate(keep.tolist())}
    cfg = model.config
    pad = emb.padding_idx if emb.padding_idx is not None else getattr(cfg, "pad_token_id", None)
    new_pad = old_to_new.get(pad) if pad is not None else None
    new_emb = torch.nn.Embedding(len(keep), emb.embedding_dim, padding_idx=new_pad)
    with torch.no_grad():
        new_emb.weight.copy_(emb.weight[keep])
    model.set_input_embeddings(new_emb)
    if out is not None:  # a language-model head: its rows are per token too
        new_out = torch.nn.Linear(out.in_features, len(keep), bias=out.bias is not None)
        with torch.no_grad():
            if tied:
                new_out.weight = new_emb.weight
            else:
                new_out.weight.copy_(out.weight[keep])
            if out.bias is not None:
                new_out.bias.copy_(out.bias[keep])
        model.set_output_embeddings(new_out)
    cfg.vocab_size = len(keep)
    for attr in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        val = getattr(cfg, attr, None)
        if isinstance(val, int):
            setattr(cfg, attr, old_to_new.get(val))
    return model


def prune_vocab(model: Any, tokenizer: Any, keep_ids: Sequence[int]) -> tuple[Any, Any]:
    """Shrink `model`'s vocabulary to `keep_ids` (special ids are always kept); returns (model, new tokenizer).

    The model is edited in place; its config's vocab_size and special token ids follow the new numbering.
    """
    keep = check_keep_ids(tokenizer, keep_ids)
    emb = model.get_input_embeddings()
    if emb.num_embeddings != len(tokenizer):
        raise ModelError(f"model has {emb.num_embeddings} embedding rows but the tokenizer has {len(tokenizer)} "
                         "tokens; prune a model together with its own tokenizer")
    new_tok = prune_tokenizer(tokenizer, keep)
    prune_embeddings(model, keep)
    return model, new_tok
