"""An offline language pipeline for unstructured's text-type heuristics.

unstructured classifies text (narrative, title, list item) with spaCy, and when
``en_core_web_sm`` is not installed it downloads the model wheel at run time.
This service never downloads models, and an unreachable download makes every
PDF, text and docx partition fail. ``install()`` hands unstructured a pipeline
that needs no download: the real ``en_core_web_sm`` when the package is
installed, otherwise a blank English tokenizer with a rule-based sentencizer
and a small rule-based verb tagger (auxiliaries, modals, -ed/-ing forms), which
is all the heuristics ask of it (``contains_verb`` and ``sentence_count``).
"""

from __future__ import annotations

import functools
import importlib.util
import threading

import spacy
from spacy.language import Language
from spacy.tokens import Doc

_AUXILIARIES = frozenset(
    [
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "'s",
        "'re",
        "'ve",
        "'d",
        "'ll",
    ]
)
_MIN_SUFFIX_WORD = 5
_lock = threading.Lock()
_installed = False


@Language.component("ragmesh_rule_verbs")
def _rule_verbs(doc: Doc) -> Doc:
    """Tags auxiliaries, modals and -ed/-ing forms as verbs (Penn tags), everything else as nouns."""
    for token in doc:
        lower = token.lower_
        if lower in _AUXILIARIES:
            token.tag_ = "VBZ"
        elif token.is_alpha and len(lower) >= _MIN_SUFFIX_WORD and lower.endswith(("ed", "ing")):
            token.tag_ = "VBD" if lower.endswith("ed") else "VBG"
        else:
            token.tag_ = "NN"
    return doc


@functools.cache
def pipeline() -> Language:
    """The pipeline unstructured gets: the installed small English model, else the rule-based one."""
    if importlib.util.find_spec("en_core_web_sm") is not None:
        return spacy.load("en_core_web_sm", exclude=["ner", "lemmatizer", "attribute_ruler"])
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("ragmesh_rule_verbs")
    return nlp


def install() -> None:
    """Points unstructured's tokenizer module at ``pipeline()``; idempotent and thread-safe."""
    global _installed
    with _lock:
        if _installed:
            return
        from unstructured.nlp import tokenize

        # unstructured looks the loader up as a module global on every call, so replacing it
        # here is the one seam that keeps its downloader from ever running.
        tokenize._get_nlp = pipeline
        _installed = True
