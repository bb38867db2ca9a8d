"""Checks of an AI draft against itself: its diagnosis heads and its sentences must agree.

The report decoder and the diagnosis heads read the same scan but are separate outputs; when
one says a finding is there and the other says it is not, the radiologist must look before
signing (e.g. a nodule head at 90 % under a draft that says "No pulmonary nodules."). A check is
raised only for a clear conflict: a head at or above `HIGH` while no positive sentence names
the finding, or at or below `LOW` while one does (`disagreements`).

The decoder writes one token at a time and can also contradict itself (`contradictions`): a
finding both reported and denied ("Moderate emphysema." under "No emphysema."), an
impression that names a finding, a side or a lobe its findings section does not describe, or
one that lists the same lobe twice ("in the left upper lobe and left upper lobe"). It can also
stop a sentence short (`unfinished`): "There is a 9 mm." gives a size and names nothing.
Qt-free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

HIGH, LOW = 0.7, 0.3
NEGATIVE_STARTS = ("no ", "there is no ", "there are no ", "without ", "normal ", "the lungs are clear")
NORMAL_PHRASES = ("heart size is normal", "heart is normal in size")

# head -> (what it is called, words that name it in a sentence, the head's "absent" class)
HEADS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "nodule": ("a pulmonary nodule", ("nodul", "mass"), "absent"),
    "effusion": ("a pleural effusion", ("effusion",), "absent"),
    "covid_severity": ("COVID-19-pattern opacities", ("ground-glass", "ground glass", "consolidation", "opacit"),
                       "CT-0"),
}


def is_negative(sentence: str) -> bool:
    """True for an explicit negative ("No pleural effusion.", "Heart size is normal.")."""
    text = sentence.strip().lower()
    return text.startswith(NEGATIVE_STARTS) or any(phrase in text for phrase in NORMAL_PHRASES)


@dataclass(frozen=True)
class Disagreement:
    head: str
    probability: float  # the head's probability that the finding is present
    text_says_present: bool
    sentences: tuple[int, ...] = ()  # the sentences involved (indices into the given ones)

    @property
    def message(self) -> str:
        name = HEADS[self.head][0]
        said = "reports" if self.text_says_present else "does not report"
        return (f"Check: the draft {said} {name}, but the {self.head.replace('_', ' ')} classifier gives "
                f"{self.probability:.0%}. Review the slices before accepting.")


def disagreements(sentences: Iterable[str], diagnosis: Mapping[str, Mapping[str, float]]) -> list[Disagreement]:
    """The clear conflicts between the draft's sentences and its diagnosis probabilities; each
    names the positive sentences that report the finding, or the negative ones that deny it."""
    texts = [s.strip().lower() for s in sentences]
    found = []
    for head, (_, words, absent) in HEADS.items():
        classes = diagnosis.get(head)
        if not classes or absent not in classes:
            continue
        present = 1.0 - float(classes[absent])
        naming = [i for i, t in enumerate(texts) if t and any(word in t for word in words)]
        said = tuple(i for i in naming if not is_negative(texts[i]))
        if present >= HIGH and not said:
            found.append(Disagreement(head, present, False, tuple(naming)))
        elif present <= LOW and said:
            found.append(Disagreement(head, present, True, said))
    return found


# finding -> (what it is called, a pattern that names it, phrases that deny it without a "no")
FINDINGS: dict[str, tuple[str, re.Pattern[str], tuple[str, ...]]] = {
    "nodule": ("a pulmonary nodule", re.compile(r"nodul|\bmass"), ()),
    "effusion": ("a pleural effusion", re.compile(r"pleural (effusion|fluid)"), ()),
    "opacity": ("ground-glass opacity or consolidation",
                re.compile(r"ground.glass|consolidation|opacit|covid|pneumonia"), ()),
    "emphysema": ("emphysema", re.compile(r"emphysema"), ()),
    "cardiomegaly": ("cardiomegaly", re.compile(r"cardiomegaly|(heart|cardiac)\b.*\benlarg|enlarged (heart|cardiac)"),
                     NORMAL_PHRASES + ("normal heart size",)),
}
LOBES = ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe", "lingula")
_SIDE = re.compile(r"\b(left|right|bilateral|both)\b")
# A lobe listed twice in a row ("in the left upper lobe and left upper lobe"): a decoding glitch
# no radiologist writes; a second nodule in the same lobe is written as its own phrase.
_REPEATED_LOBE = re.compile(r"\b(" + "|".join(LOBES) + r")(?:,| and| or)(?: the)? \1\b")


def _names(sentence: str, finding: str) -> bool:
    if finding == "opacity" and _names(sentence, "nodule"):
        return False  # "A 12 mm ground-glass nodule" is a nodule, not an airspace opacity
    return FINDINGS[finding][1].search(sentence) is not None


def _denies(sentence: str, finding: str) -> bool:
    return (is_negative(sentence) and _names(sentence, finding)) or any(
        phrase in sentence for phrase in FINDINGS[finding][2])


def _sides(sentences: list[str]) -> set[str]:
    found: set[str] = set()
    for sentence in sentences:
        for word in _SIDE.findall(sentence):
            found |= {"left", "right"} if word in ("bilateral", "both") else {word}
    return found


@dataclass(frozen=True)
class Contradiction:
    finding: str
    message: str
    sentences: tuple[int, ...] = ()  # the sentences involved (indices into the given ones)


def contradictions(sentences: Iterable[tuple[str, str]]) -> list[Contradiction]:
    """Where the draft contradicts itself; `sentences` are (section, text) with section
    "FINDINGS" or "IMPRESSION". At most one contradiction per finding, the plainest first:
    reported and denied, then an impression finding the findings section does not describe,
    then an impression lobe or side the findings section does not name, then a lobe listed twice."""
    given = [(section.upper(), text.strip()) for section, text in sentences]
    lower = [text.lower() for _, text in given]
    has_findings = any(section == "FINDINGS" and text for section, text in given)
    found = []
    for finding, (name, _, _) in FINDINGS.items():
        denied = [i for i, t in enumerate(lower) if t and _denies(t, finding)]
        positive = [i for i, t in enumerate(lower) if t and _names(t, finding) and i not in denied]
        if positive and denied:
            found.append(Contradiction(finding, f"Check: the draft both reports and denies {name} "
                                                f"(\"{given[positive[0]][1]}\" / \"{given[denied[0]][1]}\"). "
                                                "Correct one of them before accepting.", (positive[0], denied[0])))
            continue
        said = [lower[i] for i in positive if given[i][0] == "FINDINGS"]
        concluded = [i for i in positive if given[i][0] == "IMPRESSION"]
        if not concluded or not has_findings:
            continue
        if not said:
            found.append(Contradiction(finding, f"Check: the impression reports {name} that the findings do not "
                                                "describe. Review the slices before accepting.", tuple(concluded)))
            continue
        for i in concluded:
            extra_lobes = [lobe for lobe in LOBES if lobe in lower[i] and not any(lobe in s for s in said)]
            extra_sides = sorted(_sides([lower[i]]) - _sides(said)) if _sides(said) else []
            where = f"in the {extra_lobes[0]}" if extra_lobes else (f"on the {extra_sides[0]}" if extra_sides else "")
            if where:
                found.append(Contradiction(finding, f"Check: the impression reports {name} {where}, which the "
                                                    "findings do not describe. Review the slices before accepting.",
                                           (i,)))
                break
            repeated = _REPEATED_LOBE.search(lower[i])
            if repeated:
                left_out = [lobe for lobe in LOBES if any(lobe in t for t in said) and lobe not in lower[i]]
                also = f"; the findings also name the {' and the '.join(left_out)}" if left_out else ""
                found.append(Contradiction(finding, f"Check: the impression names the {repeated.group(1)} twice in "
                                                    f"one list (\"{given[i][1]}\"){also}. Correct the lobes before "
                                                    "accepting.", (i,)))
                break
    return found


@dataclass(frozen=True)
class Check:
    """One thing the reader must look at before accepting: its message and the sentences it
    concerns (indices into the sentences checked)."""

    message: str
    sentences: tuple[int, ...] = ()


# A size written as an adjective with no noun after it ("There is a 9 mm."): the decoder stopped
# the phrase short (seen on the shared real series, far from the phantoms it learnt from). A
# reader's "The nodule measures 9 mm." has no article before the size and is not flagged.
_DANGLING_SIZE = re.compile(r"\b(?:a|an)\s+\d+(?:\.\d+)?\s*(?:mm|cm)\s*[.;:]?\s*$")


def unfinished(sentences: Iterable[str]) -> Check | None:
    """One check naming every sentence that gives a size but stops before saying of what."""
    texts = [text.strip() for text in sentences]
    short = tuple(i for i, text in enumerate(texts) if _DANGLING_SIZE.search(text.lower()))
    if not short:
        return None
    quoted = " / ".join(f'"{texts[i]}"' for i in short)
    return Check(f"Check: {quoted} gives a size but names no finding. Complete or delete "
                 f"{'it' if len(short) == 1 else 'them'} before accepting.", short)


def report_checks(sentences: Sequence[tuple[str, str]], diagnosis: Mapping[str, Mapping[str, float]]) -> list[Check]:
    """Every check of a report's (section, text) sentences: against the diagnosis heads first,
    then against itself, then sentences stopped short. Runs on the AI draft and again on the text
    as the reader edits it."""
    heads = disagreements([text for _, text in sentences], diagnosis)
    short = unfinished(text for _, text in sentences)
    return ([Check(d.message, d.sentences) for d in heads]
            + [Check(c.message, c.sentences) for c in contradictions(sentences)]
            + ([short] if short else []))
