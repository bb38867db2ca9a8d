"""Exceptions raised by the inference runtime. Must not import app/, ui/, DICOM libraries or torch."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of every error the inference runtime raises on purpose."""


class PackageError(InferenceError):
    """A model package is missing, malformed or does not match its manifest's SHA-256 pins."""


class InputError(InferenceError):
    """The CT volume handed to the runtime cannot be used (wrong shape, spacing or dtype)."""


class CancelledError(InferenceError):
    """Drafting stopped because the caller's cancel token was set.

    `tokens_generated` is how many report tokens had been produced when it stopped.
    """

    def __init__(self, message: str = "cancelled", tokens_generated: int = 0) -> None:
        super().__init__(message)
        self.tokens_generated = tokens_generated
