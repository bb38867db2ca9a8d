"""WordPiece tokenizers for model packages: trained from report texts, or read from a BERT vocab.

Special-token ids: our own tokenizers use [PAD]=0 [UNK]=1 [CLS]=2 (BOS) [SEP]=3 (EOS) [MASK]=4;
an official bert-base-chinese vocab keeps BERT's ids ([PAD]=0 [UNK]=100 [CLS]=101 [SEP]=102).
Must not import app, ui or inference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# A small built-in corpus of English chest-CT report sentences, so a package can be built
# before the phantom report corpus exists. Written for this project.
BUILTIN_CORPUS: tuple[str, ...] = (
    "The lungs are clear bilaterally.",
    "No focal consolidation, pleural effusion or pneumothorax.",
    "The heart size is normal. No pericardial effusion.",
    "The mediastinal and hilar lymph nodes are not enlarged.",
    "A solid nodule measuring 8 mm is seen in the right upper lobe.",
    "A part-solid nodule measuring 12 mm is present in the left lower lobe.",
    "A ground-glass nodule of 6 mm is noted in the right middle lobe.",
    "Small left pleural effusion with adjacent atelectasis.",
    "Moderate right pleural effusion.",
    "Large bilateral pleural effusions with compressive atelectasis.",
    "Multifocal ground-glass opacities in both lungs, predominantly peripheral.",
    "Patchy consolidation in the right lower lobe, consistent with pneumonia.",
    "Bilateral peripheral ground-glass opacities, typical of viral pneumonia.",
    "Extent of lung involvement is less than 25 percent.",
    "Extent of lung involvement is between 25 and 50 percent.",
    "Extent of lung involvement is between 50 and 75 percent.",
    "Emphysematous changes in both upper lobes.",
    "Linear atelectasis at the left lung base.",
    "The trachea and main bronchi are patent.",
    "Calcified granuloma in the left upper lobe.",
    "Mild bronchial wall thickening.",
    "No suspicious pulmonary nodule is identified.",
    "The visualised upper abdomen is unremarkable.",
    "Degenerative changes of the thoracic spine.",
    "Stable appearance compared with the prior examination.",
    "Recommend follow-up chest CT in 3 months.",
    "Recommend follow-up chest CT in 12 months.",
    "Findings are suspicious for primary lung malignancy.",
    "The pulmonary arteries are normal in calibre.",
    "Coronary artery calcification is present.",
    "A cavitating mass measuring 35 mm in the right upper lobe.",
    "Interlobular septal thickening at both lung bases.",
    "No acute cardiopulmonary abnormality.",
    "Impression: normal chest CT.",
    "Impression: pulmonary nodule, follow-up recommended.",
    "Impression: pleural effusion.",
    "Impression: findings consistent with COVID-19 pneumonia.",
)


def train_wordpiece(texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 1) -> Tokenizer:
    """A lower-casing BERT-style WordPiece tokenizer learnt from `texts`; specials get ids 0..4.

    Deterministic (the `tokenizers` WordPiece trainer breaks frequency ties in hash order, so
    two runs can differ, which would change a package's hashes): the vocabulary is every
    character seen (alone and as a `##` continuation), then whole words by frequency (ties
    alphabetical) up to `vocab_size` (the characters are always kept, even beyond it).
    Unknown words fall back to character pieces, never [UNK] for seen characters.
    """
    tokenizer = _bert_pipeline(Tokenizer(models.WordPiece(vocab={"[UNK]": 0}, unk_token="[UNK]")), True)
    fit_word_vocabulary(tokenizer, texts, vocab_size, min_frequency)
    _add_template(tokenizer)
    return tokenizer


def fit_word_vocabulary(tokenizer: Tokenizer, texts: Iterable[str], vocab_size: int,
                        min_frequency: int = 1) -> None:
    """Give `tokenizer` (normalizer and pre-tokenizer set) a deterministic WordPiece vocabulary:
    the specials, every character seen (alone and as `##` continuation), then whole words by
    frequency (ties alphabetical) up to `vocab_size` (characters are always kept)."""
    counts: Counter[str] = Counter()
    for text in texts:
        normalised = tokenizer.normalizer.normalize_str(text)
        counts.update(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalised))
    chars = sorted({char for word in counts for char in word})
    tokens = list(SPECIAL_TOKENS) + chars + [f"##{char}" for char in chars]
    ranked = sorted((w for w, n in counts.items() if n >= min_frequency and len(w) > 1),
                    key=lambda w: (-counts[w], w))
    tokens += ranked[: max(0, vocab_size - len(tokens))]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer.model = models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100)


def from_vocab_file(path: Path, lowercase: bool = True) -> Tokenizer:
    """A WordPiece tokenizer from a BERT vocab.txt (one token per line, id = line number)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    vocab = {}
    for index, token in enumerate(lines):
        vocab.setdefault(token.strip() if token.strip() else token, index)
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in vocab]
    if missing:
        raise ValueError(f"{path} is not a BERT vocabulary: no {', '.join(missing)} token")
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    _bert_pipeline(tokenizer, lowercase=lowercase)
    _add_template(tokenizer)
    return tokenizer


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """The manifest's token ids: bos ([CLS]), eos ([SEP]), pad, unk."""
    names = {"bos": "[CLS]", "eos": "[SEP]", "pad": "[PAD]", "unk": "[UNK]"}
    return {key: int(tokenizer.token_to_id(token)) for key, token in names.items()}


def _bert_pipeline(tokenizer: Tokenizer, lowercase: bool) -> Tokenizer:
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def _add_template(tokenizer: Tokenizer) -> None:
    present = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is not None]
    tokenizer.add_special_tokens(present)  # already in the vocabulary: ids do not change
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
