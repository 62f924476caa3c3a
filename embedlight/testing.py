"""Tiny random-init models for tests and smoke runs (no download, builds in well under a second).

``make_tiny_model(dir, "bert")`` writes a 2-layer, hidden-32 BERT with a ~100-word fast tokenizer;
``"llama"`` writes the same size of causal Llama whose tokenizer has BOS/EOS but no pad token.
"""

from __future__ import annotations

import os

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = (
    "the a an of to in and or is are was be on for with as by at from it this that what who how why when "
    "where which query passage document doc text title news sport business politics tech music film game "
    "team player win lose market bank money price rate cat dog bird fish red blue green big small new old "
    "good bad fast slow retrieve represent sentence searching relevant passages instruct task given find "
    "similar question answer example response one two three four five yes no"
).split()


def _tokenizer(specials: list[str], template: str | None, **names: str) -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate([*specials, *WORDS, ":", ",", ".", "?", "!"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]" if "[UNK]" in vocab else "<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    if template:
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(s, vocab[s]) for s in specials if s in template]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **names)


def make_tiny_model(
    directory: str, arch: str = "bert", hidden: int = 32, layers: int = 2, seed: int = 0
) -> str:
    """Write a tiny random-init model plus tokenizer to ``directory`` and return it.

    Args:
        directory: Output folder.
        arch: ``bert`` (encoder) or ``llama`` (causal decoder, tokenizer without a pad token).
        hidden: Hidden size.
        layers: Number of layers.
        seed: Weight init seed.
    """
    os.makedirs(directory, exist_ok=True)
    torch.manual_seed(seed)
    if arch == "bert":
        tok = _tokenizer(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            "[CLS] $A [SEP]",
            pad_token="[PAD]",
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
        config = BertConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=hidden * 2,
            max_position_embeddings=128,
            pad_token_id=tok.pad_token_id,
        )
        model = BertModel(config)
    elif arch == "llama":
        tok = _tokenizer(
            ["<unk>", "<s>", "</s>"], "<s> $A", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
        )
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=hidden * 2,
            max_position_embeddings=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(f"arch must be 'bert' or 'llama', got {arch!r}")
    model.save_pretrained(directory, safe_serialization=True)
    tok.save_pretrained(directory)
    return directory
