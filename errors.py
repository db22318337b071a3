"""The root of jetfm's user errors.

A ``JetfmError`` is a request jetfm cannot serve as asked (a bad argument, a missing or damaged
file, a name not in the catalog); its message names what is at fault and what to do, and the CLI,
the tools and the agent show it without a traceback. Any other exception is a bug and keeps its
traceback. The layers' own errors (DataError, CatalogError, ...) derive from it, and keep the
built-in base that describes them (ValueError, LookupError, ...) so ``except ValueError`` still
catches a bad value.
"""

from __future__ import annotations


class JetfmError(Exception):
    """A request jetfm cannot serve as asked; the message says what to change."""


class UsageError(JetfmError, ValueError):
    """A bad argument or setting."""


class MissingFileError(JetfmError, FileNotFoundError):
    """A file or folder jetfm needs is not where it should be."""
