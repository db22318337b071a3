"""Errors of the data layer: each names the file, branch or value at fault and what to do."""

from __future__ import annotations

from jetfm.errors import JetfmError


class DataError(JetfmError, ValueError):
    """Bad input data or arguments; the message says what is wrong and how to fix it."""


class GenerationError(JetfmError, RuntimeError):
    """Event generation could not deliver what was asked (e.g. a pT window it cannot fill)."""
