"""Independent reference tokenizer for test oracles.

Builds a HuggingFace `tokenizers` BPE tokenizer from the vocabulary and merges
stored in a GGUF file (read with the PyPI `gguf` package), configured like
SmolLM2's tokenizer.json: pre-tokenizer Sequence[Digits(individual_digits),
ByteLevel(add_prefix_space=False, use_regex=True)], ByteLevel decoder, and the
control tokens registered as special tokens. None of this code path is ours.
"""
from gguf import GGUFReader
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken


def _field_strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def _field_ints(reader, key):
    f = reader.fields[key]
    return [int(f.parts[i][0]) for i in f.data]


def load_tokenizer(gguf_path):
    r = GGUFReader(gguf_path)
    tokens = _field_strings(r, "tokenizer.ggml.tokens")
    merges = _field_strings(r, "tokenizer.ggml.merges")
    types = _field_ints(r, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    merge_pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merge_pairs, fuse_unk=False,
                               byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False)
                for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    return tok


def chat_prompt(user, system="You are a helpful AI assistant named SmolLM, trained by Hugging Face"):
    """ChatML as SmolLM2's template renders one user turn plus the
    generation prefix (add_generation_prompt=True)."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
