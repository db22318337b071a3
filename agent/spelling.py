"""Typos in the words the router reads: "genrate 4000 jets", "a summry of hlvqq_run", "8 wrkers".

A word of six letters or more that is not in jetfm's vocabulary (action words, the lexicon's
physics words, number words, argument words), but is one slip away from exactly one word of it
with the same first letter, is read as that word. A slip is a dropped letter or two neighbours
swapped, the typos of every request suite here; a changed letter is not one, as it mostly makes
another word ("latest" is no misspelt "latent"). Names are never touched: a token glued to
digits, "_", "-", "." or "/" is a name or a path, and so is a token the workspace holds. Short
words stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from jetfm.agent.clauses import ACTION_WORDS, STARTING_WORDS
from jetfm.agent.lexicon import VOCABULARIES, class_phrases
from jetfm.agent.numbers import NUMBER_WORDS
from jetfm.slips import slip_of

MIN_LENGTH = 6
# Words of requests that name an argument or what it counts, besides the action words and the lexicon.
ARGUMENT_WORDS = (
    "workers", "labels", "labelled", "labeled", "steps", "iterations", "epochs", "batch", "seed", "learning",
    "neighbours", "neighbors", "nearest", "similar", "dataset", "datasets", "sample", "samples", "model", "models",
    "classifier", "tagger", "backbone", "embeddings", "embedding", "index", "indexes", "reference", "background",
    "signal", "constituents", "constituent", "multiplicity", "particles", "subjettiness", "histogram", "histograms",
    "distribution", "observable", "observables", "between", "please", "generate", "simulate", "pretrain",
    "finetune", "evaluate", "summary",
    "summarise", "summarize", "describe", "contrastive", "masked", "transverse", "momentum", "rejection",
    "efficiency", "anomaly", "anomalies", "quantised", "quantized", "zero-shot",
)


def _words(phrases: Iterable[str]) -> set[str]:
    return {w for p in phrases for w in re.findall(r"[a-z]+", p.lower()) if len(w) >= MIN_LENGTH - 1}


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    words = _words(w for ws in ACTION_WORDS.values() for w in ws) | _words(STARTING_WORDS) | _words(ARGUMENT_WORDS)
    words |= _words(NUMBER_WORDS)
    for table in VOCABULARIES.values():
        words |= _words(p for phrases in table.values() for p in phrases)
    words |= _words(p for phrases in class_phrases().values() for p in phrases)
    return frozenset(words)


@lru_cache(maxsize=1)
def _targets() -> frozenset[str]:
    """The whole words of the vocabulary: an action word's stem ("generat") is no spelling."""
    vocab, whole = vocabulary(), _words(ARGUMENT_WORDS) | _words(NUMBER_WORDS)
    return frozenset(w for w in vocab if w in whole or not any(v != w and v.startswith(w) for v in vocab))


def _known(word: str, vocab: frozenset[str]) -> bool:
    """In the vocabulary, or one of its words with an ending ("generated", "plots", "summaries")."""
    if word in vocab:
        return True
    for ending in ("s", "es", "ed", "d", "ing", "ly", "er", "ers"):
        stem = word.removesuffix(ending)
        if stem != word and (stem in vocab or stem + "e" in vocab):
            return True
    return any(v.startswith(word) or word.startswith(v) for v in vocab if len(v) >= MIN_LENGTH)


@lru_cache(maxsize=4096)
def correction(word: str) -> str | None:
    """The vocabulary word ``word`` misspells, or None (known, too short, or no single match)."""
    low = word.lower()
    vocab = vocabulary()
    if len(low) < MIN_LENGTH or _known(low, vocab):
        return None
    return slip_of(low, _targets())


_TOKEN = re.compile(r"(?<![\w\-./\\])[A-Za-z]+(?![\w\-./\\]|'\w)")


def correct_spelling(request: str, names: Iterable[str] = ()) -> str:
    """``request`` with its misspelt vocabulary words corrected (see the module docstring); the
    workspace's ``names`` stay as written."""
    protected = {n.lower() for n in names}

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if word.lower() in protected:
            return word
        return correction(word) or word

    return _TOKEN.sub(fix, request)
