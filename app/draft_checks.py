"""Checks of an AI draft against itself: its diagnosis heads and its text must agree.

The report decoder and the diagnosis heads read the same scan but are separate outputs; when
one says a finding is there and the other says it is not, the radiologist must look before
signing (e.g. a nodule head at 90 % under a draft that says "No pulmonary nodules."). A check is
raised only for a clear conflict: a head at or above `HIGH` while no positive sentence names
the finding, or at or below `LOW` while one does. Qt-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HIGH, LOW = 0.7, 0.3
NEGATIVE_STARTS = ("no ", "there is no ", "without ", "normal ", "the lungs are clear")

# head -> (what it is called, words that name it in a sentence, the head's "absent" class)
HEADS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "nodule": ("a pulmonary nodule", ("nodul", "mass"), "absent"),
    "effusion": ("a pleural effusion", ("effusion",), "absent"),
    "covid_severity": ("COVID-19-pattern opacities", ("ground-glass", "ground glass", "consolidation", "opacit"),
                       "CT-0"),
}


def is_negative(sentence: str) -> bool:
    """True for an explicit negative ("No pleural effusion.")."""
    return sentence.strip().lower().startswith(NEGATIVE_STARTS)


@dataclass(frozen=True)
class Disagreement:
    head: str
    probability: float  # the head's probability that the finding is present
    text_says_present: bool

    @property
    def message(self) -> str:
        name = HEADS[self.head][0]
        said = "reports" if self.text_says_present else "does not report"
        return (f"Check: the draft {said} {name}, but the {self.head.replace('_', ' ')} classifier gives "
                f"{self.probability:.0%}. Review the slices before accepting.")


def disagreements(sentences: Iterable[str], diagnosis: Mapping[str, Mapping[str, float]]) -> list[Disagreement]:
    """The clear conflicts between the draft's sentences and its diagnosis probabilities."""
    positive = [s.lower() for s in sentences if s.strip() and not is_negative(s)]
    found = []
    for head, (_, words, absent) in HEADS.items():
        classes = diagnosis.get(head)
        if not classes or absent not in classes:
            continue
        present = 1.0 - float(classes[absent])
        said = any(word in sentence for sentence in positive for word in words)
        if (present >= HIGH and not said) or (present <= LOW and said):
            found.append(Disagreement(head, present, said))
    return found
