"""Runs the AI draft and the report workflow for the shown series: draft, heatmaps, evidence,
autosave, accept, sign, amend. Owns the tasks; every result is checked against the series it was
started for before it touches the screen."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from app.ai_service import AiService, heat_uint8_task
from app.draft_checks import Check, report_checks
from app.drafting import ReportDraft
from app.findings_review import review_items
from app.report_document import Entry, ReportDocument
from app.report_service import OpenedReport, ReportService, ReportStatus, key_of
from app.volume import Volume
from ui import workers
from ui.findings_panel import FindingsPanel
from ui.report_panel import CHECK_COLOUR, NOTE_COLOUR, ReportPanel
from ui.viewer_panel import ViewerPanel

log = logging.getLogger(__name__)
AUTOSAVE_DELAY_MS = 600


class ReportController(QObject):
    message = Signal(str)  # status-bar text
    heat_changed = Signal()  # the overlay heatmap changed (the 3-D view may re-render)
    report_ready = Signal()  # the series' starting document (restored, drafted or empty) is shown

    def __init__(self, parent: QWidget, ai: AiService, reports: ReportService, viewer: ViewerPanel,
                 report_panel: ReportPanel, findings_panel: FindingsPanel) -> None:
        super().__init__(parent)
        self._parent = parent
        self.ai, self.reports = ai, reports
        self.viewer, self.panel, self.findings = viewer, report_panel, findings_panel
        self.volume: Volume | None = None
        self.draft: ReportDraft | None = None
        self.status: ReportStatus | None = None
        self.heat: np.ndarray | None = None
        self.heat_visible = True
        self.auto_draft = False
        self.ai_enabled = True  # False: never draft, never show heat (reader-study unassisted arm)
        self._generation = 0
        self._restored_from: OpenedReport | None = None  # the restored report, when AI drafted its text
        self._draft_handle: workers.TaskHandle | None = None
        self._heat_handle: workers.TaskHandle | None = None
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self._on_autosave_timeout)
        report_panel.draft_requested.connect(self.draft_report)
        report_panel.replace_requested.connect(self.replace_with_draft)
        report_panel.cancel_requested.connect(self.cancel_draft)
        report_panel.entry_selected.connect(self._on_panel_entry_selected)
        report_panel.entry_accepted.connect(self._on_panel_entry_accepted)
        report_panel.document_changed.connect(self._autosave.start)
        report_panel.document_changed.connect(self.update_checks)
        report_panel.sign_requested.connect(self.sign)
        report_panel.amend_requested.connect(self.amend)
        findings_panel.evidence_requested.connect(self._on_findings_evidence_requested)
        findings_panel.verdict_recorded.connect(self._on_findings_verdict_recorded)
        report_panel.whole_report_requested.connect(self.show_whole_report)

    # ------------------------------------------------------------------ series
    def set_volume(self, volume: Volume | None) -> None:
        """A new series is shown (or none): forget everything about the previous one."""
        self.flush_autosave()
        self.cancel_draft()
        self._generation += 1
        self.volume, self.draft, self.status, self.heat = volume, None, None, None
        self._restored_from = None
        self.panel.clear()
        self.panel.set_series_open(volume is not None)
        self.findings.set_items([])
        self.viewer.set_heat(None)
        self.viewer.set_relevance(None)
        self.heat_changed.emit()
        if volume is not None:
            key = key_of(volume)
            self._store_task(lambda: self.reports.open_series(key), self._on_report_opened)

    def _on_report_opened(self, opened: OpenedReport | None) -> None:
        if opened is None:
            if self.auto_draft and self.ai_enabled:
                self.draft_report()
            else:
                self.report_ready.emit()
            return
        self.panel.set_document(opened.document)
        self._restored_from = opened if opened.draft_model_hash else None
        self._show_status(opened.status, restored=True)
        if self.auto_draft and not opened.status.locked:
            self.draft_report()  # for the heatmaps: the restored text stays as it is
        self.report_ready.emit()

    # ------------------------------------------------------------------ draft
    def draft_report(self) -> None:
        volume = self.volume
        if not self.ai_enabled:
            return
        if volume is None:
            self.message.emit("Open a CT series first")
            return
        if not self.ai.available:
            QMessageBox.information(self._parent, "MedMPT Workstation", self.ai.package_caption())
            return
        self.cancel_draft()
        generation, ai = self._generation, self.ai
        self.panel.set_busy(True, 0.0, "Starting\u2026")
        self._draft_handle = workers.start_task(
            lambda cancel: ai.draft_task(volume, cancel), "draft report", pool="inference",
            on_progress=lambda p: self.panel.set_busy(True, p.fraction, p.message),
            on_finished=lambda draft: self._on_draft_finished(generation, draft),
            on_error=lambda exc: self._failed("Drafting the report", exc),
            on_cancelled=lambda: (self.panel.set_busy(False), self.message.emit("Draft cancelled")),
        )

    def preload_model(self) -> None:
        """Verify and warm up the model in the background (the workstation does it at launch), so
        the first study's draft does not wait for it: for the `paper` model on a GPU that is 1.6 s
        of a 1.9 s first draft. A failure shows beside the model's name, and again on drafting."""
        if not self.ai_enabled or not self.ai.available or self.ai.summary is not None:
            return
        self.panel.model_label.setText(f"{self.ai.package_caption()}\nLoading\u2026")
        workers.start_task(
            self.ai.load_task, "load model", pool="inference",
            on_finished=self._on_model_loaded,
            on_error=lambda exc: self.panel.model_label.setText(
                f"{self.ai.package_caption()}\n\u26a0 Not loaded: {exc}"),
        )

    def _on_model_loaded(self, summary) -> None:
        if self.draft is None:  # a draft shows the model with its own notices
            self._set_model_label(summary, summary.notices)
        self.message.emit(f"Model ready on {summary.device.upper()}")

    def cancel_draft(self) -> None:
        if self._draft_handle is not None and not self._draft_handle.done.is_set():
            self._draft_handle.cancel()

    def _on_draft_finished(self, generation: int, draft: ReportDraft) -> None:
        self.panel.set_busy(False)
        if generation != self._generation or self.volume is None or not draft.matches(self.volume):
            log.info("dropped draft %s: its series is no longer shown", draft.request_id)
            return
        self.draft = draft
        result = draft.result
        self.findings.set_items(review_items(draft, self._head_notes()))
        self._show_model(draft)
        self.message.emit(f"Draft ready in {result.timings.total_ms:.0f} ms ({len(result.sentences)} sentences)")
        if self.status is None:  # a new report starts from this draft
            self.panel.set_document(draft.document())
            key, volume = key_of(self.volume), self.volume
            self._store_task(lambda: self.reports.start_from_draft(key, draft, volume), self._show_status)
        else:  # a stored report keeps its text; the reader may start over from this draft
            new_text = " ".join(s.text for s in result.sentences)
            old_text = " ".join(e.text for _, e in self.panel.document.visible())
            self.panel.replace_button.setVisible(not self.status.locked and new_text != old_text)
        self.update_checks()
        if result.sentences:
            self.panel.select_entry(0)
        self.report_ready.emit()

    def _checks_now(self) -> tuple[list[tuple[int, Entry]], list[Check]]:
        """The editor's visible entries and the checks of their text (none without a draft or with AI off)."""
        if self.draft is None or not self.ai_enabled:
            return [], []
        visible = self.panel.document.visible()
        return visible, report_checks([(e.section, e.text) for _, e in visible], self.draft.result.diagnosis)

    def open_checks(self) -> list[str]:
        """The checks of the text now in the editor."""
        return [check.message for check in self._checks_now()[1]]

    def update_checks(self) -> None:
        """Check the text now in the editor (AI or the reader's own) against the draft's diagnosis
        and against itself; show the checks under the diagnosis and mark their sentences. Runs
        after the draft and after every change, so a resolved check disappears."""
        visible, checks = self._checks_now()
        flags: dict[int, list[str]] = {}
        for check in checks:
            for position in check.sentences:
                flags.setdefault(visible[position][0], []).append(check.message)
        if self.draft is not None and self.ai_enabled:
            self.panel.diagnosis.setText(diagnosis_html(self.draft.result.diagnosis, [c.message for c in checks],
                                                        self._head_notes()))
        self.panel.set_flags(flags)

    def _head_notes(self) -> dict[str, str]:
        """Per diagnosis head, how far the loaded model's probabilities can be trusted."""
        summary = self.ai.summary
        return dict(summary.head_notes) if summary is not None else {}

    def replace_with_draft(self) -> None:
        """Start the stored (unsigned) report over from the newest draft, after asking; the old
        report keeps its text and history in the store (audited 'replaced by a new draft')."""
        draft, volume, status = self.draft, self.volume, self.status
        if draft is None or volume is None or status is None or status.locked or not draft.matches(volume):
            return
        answer = QMessageBox.question(
            self._parent, "Use new draft",
            "Replace the report text with the new AI draft? The current text (version "
            f"{status.version}) is kept in the report history and the change is audited.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._autosave.stop()
        key, snapshot = key_of(volume), ReportDocument(list(self.panel.document.entries))
        self._store_task(lambda: self.reports.replace_with_draft(key, draft, volume, snapshot),
                         lambda new_status: self._on_replaced(draft, new_status))

    def _on_replaced(self, draft: ReportDraft, status: ReportStatus) -> None:
        if self.draft is not draft:
            return
        self._restored_from = None
        self._show_model(draft)
        self.panel.set_document(draft.document())
        self.panel.replace_button.setVisible(False)
        self._show_status(status)
        self.update_checks()
        self.findings.set_items(review_items(draft, self._head_notes()))
        if draft.result.sentences:
            self.panel.select_entry(0)
        self.message.emit("The report starts over from the new AI draft; the previous text is kept in its history")

    def _show_model(self, draft: ReportDraft) -> None:
        summary = self.ai.summary
        if summary is not None:
            notices = [*summary.notices, *self._model_mismatch(draft),
                       *(f"Drafted on a series with a problem: {p}" for p in draft.series_problems)]
            self._set_model_label(summary, notices)

    def _set_model_label(self, summary, notices) -> None:
        self.panel.model_label.setText(summary.caption + "".join(f"\n\u26a0 {n}" for n in notices))

    def _model_mismatch(self, draft: ReportDraft) -> list[str]:
        """A notice when the restored text was drafted by another model than this draft's."""
        restored = self._restored_from
        if restored is None or restored.draft_model_hash == draft.model_hash:
            return []
        return [f"The restored text is an {restored.draft_provenance} (model {restored.draft_model_hash[:12]}); "
                "the heatmaps and diagnosis shown come from the loaded model, which is a different one."]

    # ------------------------------------------------------------------ evidence
    def _draft_sentence_for(self, entry_index: int) -> int | None:
        """The current draft's sentence behind an editor entry (by its AI text)."""
        if self.draft is None:
            return None
        entry = self.panel.document.entries[entry_index]
        texts = [s.text for s in self.draft.result.sentences]
        if entry.origin != "ai":
            return None
        if entry.ai_index is not None and entry.ai_index < len(texts) and texts[entry.ai_index] == entry.ai_text:
            return entry.ai_index
        return texts.index(entry.ai_text) if entry.ai_text in texts else None

    def _on_panel_entry_selected(self, index: int) -> None:
        sentence = self._draft_sentence_for(index)
        if sentence is not None:
            self.show_evidence(sentence)

    def _on_findings_evidence_requested(self, index: int) -> None:
        item = self.findings.items[index]
        if item.evidence_slice is not None:
            self.show_evidence(item.sentence, item.evidence_slice)

    def show_whole_report(self) -> None:
        """Where the AI looked for the whole report: relevance strip, most relevant slice, heatmap."""
        self.show_evidence(None)

    def show_evidence(self, sentence: int | None, slice_index: int | None = None) -> None:
        """Relevance strip, jump (to `slice_index`, else the most relevant slice) and heatmap of a
        draft sentence, or of the whole report when `sentence` is None."""
        if self.draft is None:
            return
        result = self.draft.result
        if sentence is None:
            relevance = result.report_relevance
            default_slice = int(np.argmax(relevance))
        else:
            relevance = result.sentences[sentence].slice_relevance
            default_slice = result.sentences[sentence].most_relevant_slice
        self.viewer.set_relevance(relevance)
        self.viewer.go_to_slice(default_slice if slice_index is None else slice_index)
        self.show_heat(sentence)

    def show_heat(self, sentence: int | None) -> None:
        """Compute (off the GUI thread) and overlay the heatmap of a sentence or the whole report."""
        draft, generation = self.draft, self._generation
        if draft is None or not self.ai_enabled:
            return
        if self._heat_handle is not None:
            self._heat_handle.cancel()
        self._heat_handle = workers.start_task(
            lambda cancel: heat_uint8_task(draft, sentence, cancel), "heatmap",
            on_finished=lambda heat: self._on_heat_finished(generation, draft, heat),
            on_error=lambda exc: self._failed("Computing the heatmap", exc),
        )

    def _on_heat_finished(self, generation: int, draft: ReportDraft, heat: np.ndarray) -> None:
        if generation != self._generation or draft is not self.draft or self.volume is None:
            return
        if heat.shape != self.volume.shape:
            return  # never overlay a heatmap on a volume it was not computed for
        self.heat = heat
        self.viewer.set_heat(heat if self.heat_visible else None)
        self.heat_changed.emit()

    def set_heat_visible(self, visible: bool) -> None:
        self.heat_visible = visible
        self.viewer.set_heat(self.heat if visible else None)
        self.heat_changed.emit()

    # ------------------------------------------------------------------ store
    def _on_panel_entry_accepted(self, index: int) -> None:
        entry = self.panel.document.entries[index]
        if self.volume is not None and entry.ai_index is not None:
            key, ai_index = key_of(self.volume), entry.ai_index
            self._store_task(lambda: self.reports.accept_sentence(key, ai_index), None)

    def _on_findings_verdict_recorded(self, index: int) -> None:
        if self.volume is None or self.status is None:
            self.message.emit("Verdict not saved: this series has no stored report yet")
            return
        key, item = key_of(self.volume), self.findings.items[index]
        self._store_task(lambda: self.reports.record_verdict(key, item), None)

    def _on_autosave_timeout(self) -> None:
        if self.volume is None or self.status is None or self.panel.locked:
            return
        key, snapshot = key_of(self.volume), ReportDocument(list(self.panel.document.entries))
        self._store_task(lambda: self.reports.autosave(key, snapshot), self._show_status)

    def flush_autosave(self) -> None:
        """Save pending edits now (before switching series or closing)."""
        if self._autosave.isActive():
            self._autosave.stop()
            self._on_autosave_timeout()

    def sign(self) -> None:
        if self.volume is None or self.status is None:
            self.message.emit("Nothing to sign yet")
            return
        pending = self.panel.document.pending_review
        if pending:
            QMessageBox.warning(self._parent, "Sign report",
                                f"{pending} AI sentence(s) still need review: accept, edit or delete them first.")
            return
        open_checks = self.open_checks()
        if open_checks and QMessageBox.question(
                self._parent, "Sign report",
                f"{len(open_checks)} check(s) of this report are still open:\n\n"
                + "\n".join(f"\u2022 {c}" for c in open_checks)
                + "\n\nSign anyway? The open checks are kept in the audit trail.") != QMessageBox.StandardButton.Yes:
            return
        name, ok = QInputDialog.getText(self._parent, "Sign report", "Reader name:")
        if not ok or not name.strip():
            return
        self._autosave.stop()
        key, snapshot = key_of(self.volume), ReportDocument(list(self.panel.document.entries))
        self._store_task(lambda: self.reports.sign(key, snapshot, name.strip(), open_checks), self._show_status)

    def amend(self) -> None:
        if self.volume is None or self.status is None or not self.status.locked:
            return
        reason, ok = QInputDialog.getText(self._parent, "Amend signed report", "Reason for the amendment:")
        if ok and reason.strip():
            key = key_of(self.volume)
            self._store_task(lambda: self.reports.amend(key, reason.strip()), self._show_status)

    def _show_status(self, status: ReportStatus, restored: bool = False) -> None:
        self.status = status
        if status.locked:
            text = f"Signed ({status.state}), version {status.version}" + (f" by {status.signed_by}" if status.signed_by else "")
        else:
            text = f"{'Restored' if restored else 'Saved'}: version {status.version} ({status.state})"
        self.panel.status_label.setText(text)
        if status.locked != self.panel.locked:
            self.panel.set_locked(status.locked)

    def _store_task(self, call: Callable[[], object], on_done: Callable[[object], object] | None) -> None:
        """Run a store call on the store thread; apply its result only if the series is unchanged."""
        generation = self._generation

        def task(cancel):
            return call()
            yield  # a generator task

        workers.start_task(
            task, "report store", pool="store",
            on_finished=lambda result: on_done(result) if on_done and generation == self._generation else None,
            on_error=lambda exc: self._store_failed(exc),
        )

    def _store_failed(self, exc: Exception) -> None:
        log.warning("report store: %s", exc)
        self.panel.status_label.setText(f"\u26a0 Not saved: {exc} Your text is kept in the editor.")

    def _failed(self, what: str, exc: Exception) -> None:
        self.panel.set_busy(False)
        QMessageBox.warning(self._parent, "MedMPT Workstation", f"{what} failed: {exc}")


def diagnosis_html(diagnosis: dict[str, dict[str, float]], checks: list[str] | tuple[str, ...] = (),
                   notes: dict[str, str] | None = None) -> str:
    """Diagnosis probabilities as a small HTML table, most likely class first per head, each with
    its note (grey: calibrated or not, validation AUC; app.ai_service.head_note), then (in red)
    the checks of the report's text (app.draft_checks)."""
    rows = []
    for head, classes in diagnosis.items():
        cells = html.escape(_ranked_classes(classes))
        note = (notes or {}).get(head)
        if note:
            cells += f"<br><span style='color:{NOTE_COLOUR}'>{html.escape(note)}</span>"
        rows.append(f"<tr><td><b>{head.replace('_', ' ')}</b></td><td>{cells}</td></tr>")
    warnings = "".join(f"<p style='color:{CHECK_COLOUR}'>\u26a0 {html.escape(c)}</p>" for c in checks)
    return (f"<b>AI diagnosis</b><table cellpadding=2>{''.join(rows)}</table>" if rows else "") + warnings


def _ranked_classes(classes: dict[str, float]) -> str:
    """"CT-0 97%, CT-1 3%, CT-2/CT-3 < 1%": the most likely class first; the classes that would
    print as 0 % are named together, in the head's own order, instead of in a random-looking one."""
    shown = sorted(((name, p) for name, p in classes.items() if p >= 0.005), key=lambda kv: -kv[1])
    small = [name for name, p in classes.items() if p < 0.005]
    cells = [f"{name} {p:.0%}" for name, p in shown]
    if small:
        cells.append(f"{'/'.join(small)} < 1%")
    return ", ".join(cells)
