"""Requests the assistant refuses whole, before the router plans anything.

The router chooses among the tools' calls; it cannot tell a legitimate step from a step smuggled
into a request that also asks for what no tool may do. Planning the legitimate part of such a
request runs half of it ("cancel every job and then delete the index files" would cancel the jobs,
then stop). So a request is refused whole when it

- tries to change the assistant's instructions or role (prompt injection), or
- asks to delete or wipe files or artifacts (no tool deletes: a user removes an artifact from the
  catalog with ``jetfm remove NAME`` and types its name to confirm), or
- asks to run code or shell commands (no tool runs any).

The patterns name the intent, not the phrasing of any test: each is an imperative with its object.
"""

from __future__ import annotations

import re

from jetfm.errors import JetfmError


class RequestRefused(JetfmError):
    """A request refused whole; the message says why, for the user."""


_ARTIFACTS = r"(?:files?|folders?|director(?:y|ies)|datasets?|samples?|models?|backbones?|taggers?|index(?:es)?|" \
             r"indices|embeddings?|catalog(?:ue)?|workspace|everything|all|disk|plots?|jobs? files?)"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "it tries to change my instructions",
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass)\b[^.?!]{0,40}\b(?:instructions?|rules?|prompt|guidelines?|"
            r"polic(?:y|ies)|restrictions?)\b|\b(?:assistant|system|developer|admin)\s+(?:override|mode)\b|"
            r"<\|im_start\|>|<!--\s*system|</?\s*(?:system|user|assistant)\s*>|\bnew (?:rule|instruction)s?\s*:|"
            r"\byou are (?:now )?(?:root|admin|in developer mode)\b",
            re.IGNORECASE,
        ),
    ),
    (
        # instructions found in data are not the user's: "the caption says '...'. Please do what it says."
        "it asks me to follow instructions written in data, or to send artifacts off this machine",
        re.compile(
            r"\b(?:do|follow|execute|carry out|obey|act on)\s+(?:exactly\s+)?(?:what(?:ever)?|the instructions?)\s+"
            r"(?:it|the (?:caption|file|dataset|note|metadata|comment|text)|that|this)\s+(?:says|said|contains|asks)\b|"
            r"\bfollow (?:the|its|their) (?:embedded |hidden )?instructions (?:in|of|from) (?:it|them|that|this|"
            r"the (?:caption|dataset|file|metadata|notes?|comment|description|label))\b|"
            r"\b(?:send|upload|copy|transfer|post|push|exfiltrat\w*|e-?mail)\b[^.?!]{0,80}\b(?:ftp|sftp|scp|https?)://",
            re.IGNORECASE,
        ),
    ),
    (
        "no jetfm tool deletes anything (remove an artifact from the catalog yourself with `jetfm remove NAME`)",
        re.compile(
            rf"\b(?:delete|wipe|erase|purge|destroy|rm\s+-\w*[rf])\b[^.?!]{{0,40}}\b{_ARTIFACTS}\b|"
            rf"\b(?:remove|clear|drop)\s+(?:all|every|each|the whole)\b[^.?!]{{0,30}}\b{_ARTIFACTS}\b",
            re.IGNORECASE,
        ),
    ),
    (
        "no jetfm tool runs code or shell commands",
        re.compile(
            r"\b(?:execute|exec|eval)\s*[:(]|__import__|\bsubprocess\b|\bos\.system\b|\bshutil\b|\brm\s+-rf\b|"
            r"\b(?:open|spawn|start|give me)\s+a\s+(?:shell|terminal)\b|"
            r"\bshell (?:command|script)s?\b|\b(?:run|execute)\s+(?:(?:the|this|that|a|my)\s+)?(?:command|script)s?\b|"
            r"`[^`]*(?:cat|rm|curl|wget|sudo|chmod)\s",
            re.IGNORECASE,
        ),
    ),
)


def refusal_reason(request: str) -> str | None:
    """Why the whole request is refused, in words for the user; None when it may be planned."""
    for reason, pattern in _PATTERNS:
        if pattern.search(request):
            return reason
    return None
