"""A local character-level tokenizer (printable ASCII), saved as ordinary Hugging Face tokenizer files."""
from __future__ import annotations

import string
from pathlib import Path

from .env import offline

SPECIALS = ("<bos>", "<eos>", "<pad>", "<unk>")
CHARS = "".join(c for c in string.printable if c not in "\t\r\x0b\x0c")  # includes space and newline


def char_vocab() -> dict[str, int]:
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for c in CHARS:
        vocab[c] = len(vocab)
    return vocab


def build_char_tokenizer(out_dir: Path):
    """Write the tokenizer to `out_dir` and load it back (TransformerLens needs a reloadable tokenizer)."""
    offline()
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=char_vocab(), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(""), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return load_tokenizer(out_dir)


def load_tokenizer(tok_dir: Path):
    offline()
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
