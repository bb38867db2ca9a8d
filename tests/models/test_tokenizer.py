"""Package tokenizers: trained WordPiece with fixed special ids, and BERT vocab.txt files."""

from __future__ import annotations

import pytest

from models.medmpt.tokenizer import BUILTIN_CORPUS, from_vocab_file, special_ids, train_wordpiece


def test_trained_tokenizer_has_the_package_special_ids_and_round_trips_reports():
    tokenizer = train_wordpiece(BUILTIN_CORPUS, vocab_size=2000)
    ids = [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    assert ids == [0, 1, 2, 3, 4]
    assert special_ids(tokenizer) == {"bos": 2, "eos": 3, "pad": 0, "unk": 1}
    text = "small left pleural effusion with adjacent atelectasis."
    encoding = tokenizer.encode(text)
    assert encoding.ids[0] == 2 and encoding.ids[-1] == 3
    assert tokenizer.decode(encoding.ids) == text


def test_bert_vocab_file_keeps_bert_ids(tmp_path):
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += ["肺", "纹", "理", "清", "晰", "。", "lung", "##s"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tokenizer = from_vocab_file(vocab)
    assert special_ids(tokenizer) == {"bos": 101, "eos": 102, "pad": 0, "unk": 100}
    encoding = tokenizer.encode("肺纹理清晰。Lungs")
    assert encoding.tokens == ["[CLS]", "肺", "纹", "理", "清", "晰", "。", "lung", "##s", "[SEP]"]


def test_vocab_without_bert_specials_is_refused_with_a_message(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"not a BERT vocabulary: no \[PAD\]"):
        from_vocab_file(vocab)
    with pytest.raises(FileNotFoundError, match="vocabulary file not found"):
        from_vocab_file(tmp_path / "missing.txt")


def test_training_is_reproducible_so_package_hashes_are_stable():
    first = train_wordpiece(BUILTIN_CORPUS, vocab_size=2000)
    second = train_wordpiece(list(reversed(BUILTIN_CORPUS)), vocab_size=2000)
    assert first.get_vocab() == second.get_vocab()


def test_unseen_words_fall_back_to_pieces_not_unknown():
    tokenizer = train_wordpiece(BUILTIN_CORPUS, vocab_size=2000)
    encoding = tokenizer.encode("bronchiectasis")
    assert "[UNK]" not in encoding.tokens and len(encoding.tokens) > 3
    assert tokenizer.decode(encoding.ids) == "bronchiectasis"


def test_vocab_size_limits_the_vocabulary():
    small = train_wordpiece(BUILTIN_CORPUS, vocab_size=120)
    assert small.get_vocab_size() <= 120
    assert small.token_to_id("[SEP]") == 3
