"""Synthetic chest-CT phantoms with ground truth, report writer/parser and report corpus.

Tooling (models/): nothing in app/, ui/ or inference/ imports this package.
"""

from models.phantoms.case import PhantomCase, make_case
from models.phantoms.corpus import report_corpus
from models.phantoms.report import count_tokens, write_report
from models.phantoms.report_parse import ParsedReport, parse_report
from models.phantoms.truth import CasePlan, Finding

__all__ = ["CasePlan", "Finding", "ParsedReport", "PhantomCase", "count_tokens", "make_case",
           "parse_report", "report_corpus", "write_report"]
