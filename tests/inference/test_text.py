"""The decoded report is split into FINDINGS / IMPRESSION sentences with their tokens."""

from __future__ import annotations

from inference.text import FINDINGS, IMPRESSION, split_report


def _word_token_ends(text: str) -> list[int]:
    """One token per word or '.'/':' (like a WordPiece decode), ending offsets."""
    ends, i = [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        j = i + 1 if text[i] in ".:" else i
        while j < len(text) and text[j] not in " .:":
            j += 1
        ends.append(j)
        i = j
    return ends


def test_sections_and_sentences() -> None:
    text = "FINDINGS: Lungs are clear. No effusion. IMPRESSION: Normal chest CT."
    findings, impression, sentences = split_report(text, _word_token_ends(text))
    assert findings == "Lungs are clear. No effusion."
    assert impression == "Normal chest CT."
    assert [(s.text, s.section) for s in sentences] == [
        ("Lungs are clear.", FINDINGS), ("No effusion.", FINDINGS), ("Normal chest CT.", IMPRESSION)]
    # tokens: FINDINGS : Lungs are clear . No effusion . IMPRESSION : Normal chest CT .
    assert [(s.token_start, s.token_end) for s in sentences] == [(2, 6), (6, 9), (11, 15)]


def test_missing_headers_and_lower_case_are_handled() -> None:
    text = "small nodule in the right lung. impression : nodule"
    findings, impression, sentences = split_report(text, _word_token_ends(text))
    assert findings == "small nodule in the right lung."
    assert impression == "nodule"  # a last sentence without '.' is kept
    assert [s.section for s in sentences] == [FINDINGS, IMPRESSION]
    only_impression = split_report("IMPRESSION: clear.", _word_token_ends("IMPRESSION: clear."))
    assert only_impression[0] == "" and only_impression[1] == "clear."


def test_empty_text_gives_no_sentences() -> None:
    assert split_report("", []) == ("", "", [])
