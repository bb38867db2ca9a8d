"""The report being edited: FINDINGS and IMPRESSION as sentences that remember their origin.

Qt-free. AI sentences stay marked as AI-drafted until a person accepts or edits them; deleted
AI sentences are kept (hidden) so the reader study and the audit can count kept / edited /
deleted sentences. Human sentences are plain text the radiologist added.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SECTIONS = ("FINDINGS", "IMPRESSION")


@dataclass(frozen=True)
class Entry:
    """One sentence of the report."""

    text: str
    section: str
    origin: str = "human"  # "ai" or "human"
    status: str = "human"  # "ai" (untouched draft), "accepted", "edited", "deleted", "human"
    ai_index: int | None = None  # index into the draft's sentences, for AI-originated entries
    ai_text: str = ""  # the text as the model wrote it

    @property
    def needs_review(self) -> bool:
        return self.status == "ai"

    @property
    def visible(self) -> bool:
        return self.status != "deleted"


@dataclass
class ReportDocument:
    """Ordered entries; every change goes through a method so its history is explicit."""

    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def from_ai_sentences(cls, sentences: list[tuple[str, str]]) -> ReportDocument:
        """Entries from (section, text) pairs of an AI draft, all still awaiting review."""
        return cls([
            Entry(text, section if section in SECTIONS else "FINDINGS", "ai", "ai", i, text)
            for i, (section, text) in enumerate(sentences)
        ])

    def visible(self) -> list[tuple[int, Entry]]:
        return [(i, e) for i, e in enumerate(self.entries) if e.visible]

    def accept(self, index: int) -> None:
        entry = self.entries[index]
        if entry.status == "ai":
            self.entries[index] = replace(entry, status="accepted")

    def accept_all(self) -> None:
        for i in range(len(self.entries)):
            self.accept(i)

    def edit(self, index: int, text: str) -> None:
        entry = self.entries[index]
        text = " ".join(text.split())
        if not text:
            self.delete(index)
            return
        if text == entry.text:
            return
        status = "edited" if entry.origin == "ai" else "human"
        self.entries[index] = replace(entry, text=text, status=status)

    def delete(self, index: int) -> None:
        entry = self.entries[index]
        if entry.origin == "ai":
            self.entries[index] = replace(entry, status="deleted")
        else:
            del self.entries[index]

    def add(self, section: str, text: str) -> int:
        """Append a human sentence at the end of `section`; returns its index."""
        text = " ".join(text.split())
        position = max((i + 1 for i, e in enumerate(self.entries) if e.section == section), default=None)
        if position is None:
            position = len(self.entries) if section == "IMPRESSION" else 0
        self.entries.insert(position, Entry(text, section))
        return position

    @property
    def pending_review(self) -> int:
        """AI sentences nobody has accepted, edited or deleted yet."""
        return sum(1 for e in self.entries if e.needs_review)

    def section_text(self, section: str) -> str:
        return " ".join(e.text for e in self.entries if e.visible and e.section == section)

    def to_text(self) -> str:
        return "\n\n".join(f"{s}:\n{self.section_text(s)}" for s in SECTIONS)

    def counts(self) -> dict[str, int]:
        """AI sentences kept as drafted, edited, deleted, awaiting review; human sentences added."""
        keys = {"accepted": "kept", "edited": "edited", "deleted": "deleted", "ai": "pending", "human": "added"}
        out = dict.fromkeys(keys.values(), 0)
        for e in self.entries:
            out[keys[e.status]] += 1
        return out
