"""The phantom-report WordPiece tokenizer: case kept, hyphenated words whole, '.' and ',' split.

BERT's pre-tokenizer splits every punctuation mark, so decoded text reads "ground - glass" and
"CT - 3"; this one splits on whitespace and isolates only '.' and ',', so generated reports
decode to the phrasing the phantom report parser reads. Deterministic vocabulary: the special
tokens ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4), every character (alone and as '##'
continuation), then whole words by frequency (ties alphabetical).
Must not import app, ui or inference.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from models.medmpt.tokenizer import SPECIAL_TOKENS, fit_word_vocabulary


def _pipeline(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"[.,]"), behavior="isolated")])
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return tokenizer


def train_report_tokenizer(texts: Iterable[str], vocab_size: int = 2000) -> Tokenizer:
    """A WordPiece tokenizer over the words of `texts` (at most `vocab_size` entries plus chars)."""
    tokenizer = _pipeline(Tokenizer(models.WordPiece(vocab={"[UNK]": 0}, unk_token="[UNK]")))
    fit_word_vocabulary(tokenizer, texts, vocab_size)
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer
