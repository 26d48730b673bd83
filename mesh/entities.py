"""Rule-based entity extraction, made the same way at ingest time and at query time.

Ingestion runs :func:`extract` on every chunk (in the parse stage, no model):
it finds

- commands: a known tool and its subcommand (``kubectl drain``, ``kubeadm init``);
- API kinds: PascalCase words (``PodDisruptionBudget``) and the known single-word
  kinds written with a capital (``a Pod``, ``the Service``);
- fields: dotted paths (``resources.limits.cpu``), camelCase names
  (``maxUnavailable``), and the key paths of YAML blocks (``resources:`` /
  ``limits:`` / ``cpu:`` gives ``resources.limits.cpu``);
- identifiers: code spans in backticks and command-line flags (``--max-pods``);
- components: the cluster's programs (``kubelet``, ``kube-proxy``, ``etcd``);
- noun phrases: runs of two or three content words between stop words and
  punctuation (a RAKE-style keyphrase candidate list), and single content words a
  chunk repeats.

Relations come from the text's structure: entities in one sentence are
``RELATED_TO`` each other, and the entities of the section heading and the
document title are ``PART_OF``-linked from the chunk's entities (heading -> the
entities under it). The document -> mention edges are the graph's own
``HAS_CHUNK`` / ``MENTIONS``.

:func:`normalize` is the one entity key: case-folded, backticks and quotes
dropped, PascalCase split into words, the last word of a phrase made singular,
so ``PodDisruptionBudgets``, ``pod disruption budget`` and ```PodDisruptionBudget```
are one entity. Code-like names (dotted paths, flags, commands, snake_case) are
only case-folded. The retrieval service keys entities with it, and its graph leg
looks a question's :func:`query_keys` up with it.

Changing anything here changes the graph: documents indexed before the change must
be re-ingested. ``EXTRACTOR_VERSION`` names the current rules.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "EXTRACTOR_VERSION",
    "LABEL_COMMAND",
    "LABEL_COMPONENT",
    "LABEL_CONCEPT",
    "LABEL_FIELD",
    "LABEL_IDENTIFIER",
    "LABEL_KIND",
    "REL_COOCCURS",
    "REL_UNDER",
    "ExtractedEntity",
    "ExtractedRelation",
    "Extraction",
    "ExtractorSettings",
    "code_keys",
    "extract",
    "normalize",
    "query_keys",
]

EXTRACTOR_VERSION = "rules-v1"

LABEL_COMMAND = "Tool"
LABEL_KIND = "Resource"
LABEL_FIELD = "Field"
LABEL_IDENTIFIER = "Identifier"
LABEL_COMPONENT = "Component"
LABEL_CONCEPT = "Concept"

REL_COOCCURS = "RELATED_TO"
REL_UNDER = "PART_OF"

# Which label wins when one key is found in several ways (higher first).
_LABEL_RANK = {
    LABEL_COMMAND: 6,
    LABEL_KIND: 5,
    LABEL_FIELD: 4,
    LABEL_COMPONENT: 3,
    LABEL_IDENTIFIER: 2,
    LABEL_CONCEPT: 1,
}

_TOOLS = frozenset({"kubectl", "kubeadm", "helm", "minikube", "crictl", "etcdctl", "systemctl", "docker", "kustomize"})
_COMPONENTS = frozenset(
    {
        "kubelet",
        "kube-proxy",
        "kube-apiserver",
        "kube-scheduler",
        "kube-controller-manager",
        "cloud-controller-manager",
        "etcd",
        "coredns",
        "containerd",
        "cri-o",
        "kubectl",
        "kubeadm",
    }
)
# Single-word API kinds: only a capitalised occurrence counts as the kind ("a Pod"), PascalCase
# kinds of two or more words are found by their shape.
_KINDS = frozenset(
    {
        "Pod",
        "Service",
        "Deployment",
        "Node",
        "Job",
        "CronJob",
        "Namespace",
        "Secret",
        "Volume",
        "Ingress",
        "Endpoints",
        "Lease",
        "Event",
        "Role",
        "Container",
        "Taint",
        "Toleration",
        "Label",
        "Annotation",
        "Gateway",
        "Probe",
    }
)
# Question and function words that never start or end a phrase (besides the stop words below).
_STOP = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "can't",
        "cannot",
        "could",
        "couldn't",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "either",
        "else",
        "etc",
        "even",
        "ever",
        "every",
        "few",
        "for",
        "from",
        "further",
        "get",
        "gets",
        "getting",
        "give",
        "given",
        "go",
        "goes",
        "going",
        "got",
        "had",
        "hadn't",
        "has",
        "hasn't",
        "have",
        "haven't",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "however",
        "i",
        "i'd",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "let",
        "let's",
        "like",
        "make",
        "makes",
        "many",
        "may",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "my",
        "myself",
        "need",
        "needs",
        "new",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "often",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "per",
        "please",
        "rather",
        "really",
        "same",
        "say",
        "says",
        "see",
        "seen",
        "shall",
        "she",
        "should",
        "shouldn't",
        "show",
        "shows",
        "since",
        "so",
        "some",
        "still",
        "such",
        "sure",
        "take",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they're",
        "this",
        "those",
        "though",
        "through",
        "thus",
        "to",
        "too",
        "two",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "use",
        "used",
        "uses",
        "using",
        "very",
        "via",
        "want",
        "wants",
        "was",
        "wasn't",
        "way",
        "we",
        "we're",
        "well",
        "were",
        "weren't",
        "what",
        "what's",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "within",
        "without",
        "won't",
        "would",
        "wouldn't",
        "yes",
        "yet",
        "you",
        "you'd",
        "you're",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "able",
        "across",
        "already",
        "always",
        "another",
        "anything",
        "around",
        "back",
        "become",
        "becomes",
        "best",
        "better",
        "called",
        "come",
        "comes",
        "different",
        "does",
        "done",
        "e.g",
        "example",
        "first",
        "following",
        "i.e",
        "instead",
        "last",
        "least",
        "less",
        "let",
        "lot",
        "next",
        "note",
        "once",
        "put",
        "run",
        "runs",
        "see",
        "set",
        "sets",
        "several",
        "something",
        "specific",
        "specified",
        "sometimes",
        "start",
        "started",
        "still",
        "tell",
        "three",
        "true",
        "false",
        "usually",
        "via",
        "want",
        "work",
        "works",
        "yaml",
        "default",
        "defaults",
        "value",
        "values",
        "name",
        "names",
        "type",
        "types",
        "kind",
        "kinds",
        "following",
        "based",
        "within",
        "able",
        "allows",
        "allow",
        "allowed",
        "contain",
        "contains",
        "containing",
        "create",
        "creates",
        "created",
        "include",
        "includes",
        "including",
        "mean",
        "means",
        "happens",
        "happen",
        "happened",
        "goes",
        "going",
        "look",
        "looks",
        "whats",
    ]
)
# kubectl's own commands: after "kubectl" in prose only these make a command ("the kubectl tool" does not).
_KUBECTL_COMMANDS = frozenset(
    [
        "annotate",
        "api-resources",
        "api-versions",
        "apply",
        "attach",
        "auth",
        "autoscale",
        "certificate",
        "cluster-info",
        "completion",
        "config",
        "cordon",
        "cp",
        "create",
        "debug",
        "delete",
        "describe",
        "diff",
        "drain",
        "edit",
        "events",
        "exec",
        "explain",
        "expose",
        "get",
        "kustomize",
        "label",
        "logs",
        "patch",
        "plugin",
        "port-forward",
        "proxy",
        "replace",
        "rollout",
        "run",
        "scale",
        "set",
        "taint",
        "top",
        "uncordon",
        "version",
        "wait",
    ]
)
# Words after another tool that are prose, not a subcommand.
_NOT_SUBCOMMANDS = frozenset({"tool", "tools", "command", "commands", "cli", "binary", "client", "is", "was"})
# Tool words that are a subcommand only when they look like one (a word, not a flag or a path).
_SUBCOMMAND_RE = re.compile(r"[a-z][a-z-]{1,30}")

_CODE_SPAN_RE = re.compile(r"`([^`\n]{1,80})`")
_COMMAND_RE = re.compile(r"(?<![\w./-])(" + "|".join(sorted(_TOOLS)) + r")\s+([a-z][a-z-]{1,30})\b")
_PASCAL_RE = re.compile(r"(?<![\w.])[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+s?(?![\w])")
_CAMEL_RE = re.compile(r"(?<![\w.-])[a-z][a-z0-9]+(?:[A-Z][a-z0-9]*)+(?![\w(])")
_DOTTED_RE = re.compile(r"(?<![\w./-])[a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)+(?![\w/(-])")
_FLAG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)+")
_CAPITAL_WORD_RE = re.compile(r"(?<![\w.])[A-Z][a-z]+s?(?![\w])")
_COMPONENT_RE = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(c) for c in sorted(_COMPONENTS)) + r")(?![\w-])")
_YAML_KEY_RE = re.compile(r"^( *)(- )?([a-zA-Z][A-Za-z0-9]*):(?:\s|$)")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'-]*[A-Za-z0-9]|[A-Za-z]")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*#|])")
# File names and hosts are not fields.
_NOT_FIELD_TAILS = frozenset(
    {"yaml", "yml", "json", "md", "io", "com", "org", "net", "sh", "txt", "html", "go", "py", "k8s", "dev", "log"}
)
_CAMEL_PART_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+")
_QUOTES = "`'\"\u201c\u201d\u2018\u2019"


@dataclass(frozen=True)
class ExtractorSettings:
    """Bounds of one chunk's extraction."""

    max_entities: int = 48
    """Most entities kept per chunk (code-like ones first, then phrases by score)."""
    max_phrase_words: int = 3
    """Longest noun phrase, in words."""
    max_relations: int = 96
    """Most relations kept per chunk."""
    max_sentence_entities: int = 8
    """Entities of one sentence that are related pairwise (more would be a clique of noise)."""


@dataclass(frozen=True)
class ExtractedEntity:
    """An entity: its display name (the first form seen) and label."""

    name: str
    label: str


@dataclass(frozen=True)
class ExtractedRelation:
    """A relation between two entities, by display name."""

    source: str
    target: str
    type: str


@dataclass(frozen=True)
class Extraction:
    """What one chunk yields."""

    entities: tuple[ExtractedEntity, ...] = ()
    relations: tuple[ExtractedRelation, ...] = ()


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "os")):
        return word[:-1]
    return word


_CODE_CHAR_RE = re.compile(r"[./_=:\[\]{}()<>$]")
_INNER_UPPER_RE = re.compile(r".[A-Z]")
# A word that cannot be part of a phrase: a digit in it, an apostrophe, or camelCase inside.
_NOT_PHRASE_WORD_RE = re.compile(r"[0-9']|^[A-Za-z]+[a-z][A-Z]|^[a-z]+[A-Z]")


def _is_code(name: str) -> bool:
    return _CODE_CHAR_RE.search(name) is not None or name.startswith("-")


@functools.lru_cache(maxsize=65536)
def normalize(name: str) -> str:
    """The entity key of ``name`` (see the module docstring); "" for nothing usable."""
    text = " ".join(name.strip().strip(_QUOTES).split())
    if not text:
        return ""
    first = text.split(" ", 1)[0]
    if _is_code(text) or first.casefold() in _TOOLS:
        return text.casefold()
    words: list[str] = []
    for word in text.split(" "):
        if word.isalnum() and _INNER_UPPER_RE.search(word):
            words.extend(p.casefold() for p in _CAMEL_PART_RE.findall(word))
        else:
            words.append(word.casefold())
    if not words:
        return ""
    words[-1] = _singular(words[-1])
    return " ".join(words)


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_RE.split(text) if s.strip()]


def _yaml_paths(text: str) -> list[str]:
    """Key paths of YAML-looking lines, their last two and three keys: ``resources.limits.cpu``."""
    paths: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = _YAML_KEY_RE.match(line)
        if match is None:
            if line.strip() and not line.startswith(" "):
                stack.clear()
            continue
        # A list item's key sits where its text starts ("- name:" under "containers:").
        indent = len(match.group(1)) + (2 if match.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(3)))
        keys = [k for _, k in stack]
        for n in (2, 3):
            if len(keys) >= n:
                paths.append(".".join(keys[-n:]))
    return paths


class _Found:
    """Entities of one text in the order first seen, keyed by normalized name."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.order: list[str] = []

    def add(self, name: str, label: str) -> str:
        name = " ".join(name.strip().strip(_QUOTES).split())
        key = normalize(name)
        if not key or len(key) < 2 or len(name) > 120 or key in _STOP:
            return ""
        if key not in self.names:
            self.names[key] = name
            self.labels[key] = label
            self.order.append(key)
        elif _LABEL_RANK[label] > _LABEL_RANK[self.labels[key]]:
            self.names[key] = name
            self.labels[key] = label
        return key


def _is_subcommand(tool: str, word: str) -> bool:
    if tool == "kubectl":
        return word in _KUBECTL_COMMANDS
    return word not in _STOP and word not in _NOT_SUBCOMMANDS and _SUBCOMMAND_RE.fullmatch(word) is not None


def _code_entities(text: str, found: _Found) -> list[tuple[int, str]]:
    """Code-like entities with their positions in ``text``."""
    hits: list[tuple[int, str]] = []

    def add(pos: int, name: str, label: str) -> None:
        key = found.add(name, label)
        if key:
            hits.append((pos, key))

    for m in _COMMAND_RE.finditer(text):
        tool, sub = m.group(1), m.group(2)
        if _is_subcommand(tool, sub):
            add(m.start(), f"{tool} {sub}", LABEL_COMMAND)
    for m in _CODE_SPAN_RE.finditer(text):
        span = m.group(1).strip()
        words = span.split()
        if not words or len(words) > 4:
            continue
        if words[0] in _TOOLS and len(words) >= 2 and _is_subcommand(words[0], words[1]):
            add(m.start(), f"{words[0]} {words[1]}", LABEL_COMMAND)
        elif len(words) == 1 and _PASCAL_RE.fullmatch(span):
            add(m.start(), span, LABEL_KIND)
        elif (len(words) == 1 and _DOTTED_RE.fullmatch(span) and span.rsplit(".", 1)[1] not in _NOT_FIELD_TAILS) or (
            len(words) == 1 and _CAMEL_RE.fullmatch(span)
        ):
            add(m.start(), span, LABEL_FIELD)
        elif len(words) <= 2:
            add(m.start(), span.rstrip(":"), LABEL_IDENTIFIER)
    for m in _PASCAL_RE.finditer(text):
        add(m.start(), m.group(0), LABEL_KIND)
    for m in _CAPITAL_WORD_RE.finditer(text):
        word = m.group(0)
        if word in _KINDS or (word.endswith("s") and word[:-1] in _KINDS):
            # A capital at a sentence start says nothing; mid-sentence "a Pod" names the kind.
            before = text[max(0, m.start() - 2) : m.start()]
            if before.strip() and not before.rstrip().endswith((".", "!", "?", ":", "#")):
                add(m.start(), word, LABEL_KIND)
    for m in _DOTTED_RE.finditer(text):
        path = m.group(0)
        if path.rsplit(".", 1)[1] not in _NOT_FIELD_TAILS and path.split(".", 1)[0] not in {"e", "i", "etc"}:
            add(m.start(), path, LABEL_FIELD)
    for m in _CAMEL_RE.finditer(text):
        add(m.start(), m.group(0), LABEL_FIELD)
    for m in _FLAG_RE.finditer(text):
        add(m.start(), m.group(0), LABEL_IDENTIFIER)
    for m in _COMPONENT_RE.finditer(text):
        add(m.start(), m.group(1), LABEL_COMPONENT)
    for path in _yaml_paths(text):
        pos = text.find(path.rsplit(".", 1)[1] + ":")
        add(max(pos, 0), path, LABEL_FIELD)
    return hits


def _phrases(text: str, max_words: int) -> list[tuple[int, str]]:
    """Noun-phrase candidates: runs of content words (RAKE-style), cut into phrases of up to ``max_words``."""
    out: list[tuple[int, str]] = []
    run: list[tuple[int, str]] = []

    def flush() -> None:
        if run:
            words = [w for _, w in run]
            if len(words) <= max_words:
                out.append((run[0][0], " ".join(words)))
                # The head of an English noun phrase is its end: "limits voluntary evictions" also
                # gives "voluntary evictions" (no tagger tells the verb from the noun).
                if len(words) == 3:
                    out.append((run[1][0], " ".join(words[1:])))
            else:
                for i in range(len(words) - 1):
                    out.append((run[i][0], " ".join(words[i : i + 2])))
            run.clear()

    last_end = 0
    for m in _WORD_RE.finditer(text):
        gap = text[last_end : m.start()]
        last_end = m.end()
        word = m.group(0)
        if gap and gap.strip(" \t"):
            flush()
        if len(word) < 2 or word.casefold() in _STOP or word in _TOOLS or _NOT_PHRASE_WORD_RE.search(word) is not None:
            flush()
            continue
        run.append((m.start(), word))
    flush()
    return out


def _phrase_entities(
    text: str, found: _Found, settings: ExtractorSettings, single_repeats: int = 2
) -> list[tuple[int, str]]:
    """Phrases of two or more words, and single words the text repeats ``single_repeats`` times."""
    candidates = _phrases(text, settings.max_phrase_words)
    singles = Counter(normalize(p) for _, p in candidates if " " not in p)
    hits: list[tuple[int, str]] = []
    for pos, phrase in candidates:
        key = normalize(phrase)
        if " " in phrase or singles[key] >= single_repeats or key in found.names:
            key = found.add(phrase.casefold() if phrase[:1].isupper() and " " in phrase else phrase, LABEL_CONCEPT)
            if key:
                hits.append((pos, key))
    return hits


def extract(text: str, *, title: str = "", section: str = "", settings: ExtractorSettings | None = None) -> Extraction:
    """Entities of one chunk and their relations (same sentence; heading and title above the chunk)."""
    settings = settings or ExtractorSettings()
    found = _Found()
    hits = _code_entities(text, found)
    code_keys = set(found.order)
    hits += _phrase_entities(text, found, settings)
    counts = Counter(key for _, key in hits)
    # Code-like entities first, then phrases the chunk repeats most; keep the bound.
    ranked = sorted(found.order, key=lambda k: (k not in code_keys, -counts[k], found.order.index(k)))
    kept = set(ranked[: settings.max_entities])
    heading = _Found()
    for part in (section, title):
        if part:
            _code_entities(part, heading)
            # A heading is short and every word of it was chosen: single words count.
            _phrase_entities(part, heading, settings, single_repeats=1)
    for key in heading.order:
        if key not in found.names:
            found.names[key] = heading.names[key]
            found.labels[key] = heading.labels[key]
            found.order.append(key)
        kept.add(key)
    relations: dict[tuple[str, str, str], None] = {}
    bounds: list[int] = []
    position = 0
    for sentence in _sentences(text):
        start = text.find(sentence, position)
        position = max(start, position)
        bounds.append(position)
    hits.sort()
    by_sentence: dict[int, list[str]] = {}
    for pos, key in hits:
        if key not in kept:
            continue
        index = sum(1 for b in bounds if b <= pos)
        keys = by_sentence.setdefault(index, [])
        if key not in keys and len(keys) < settings.max_sentence_entities:
            keys.append(key)
    for keys in by_sentence.values():
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                relations.setdefault((a, b, REL_COOCCURS), None)
    for key in [k for k in found.order if k in kept and k not in heading.names]:
        for top in heading.order[:3]:
            relations.setdefault((key, top, REL_UNDER), None)
    entities = tuple(ExtractedEntity(found.names[k], found.labels[k]) for k in found.order if k in kept)
    rels = tuple(
        ExtractedRelation(found.names[a], found.names[b], t) for a, b, t in list(relations)[: settings.max_relations]
    )
    return Extraction(entities, rels)


def code_keys(text: str) -> set[str]:
    """The keys of the code-like entities of ``text`` (commands, kinds, fields, identifiers, components)."""
    found = _Found()
    _code_entities(text, found)
    return set(found.order)


def query_keys(text: str, settings: ExtractorSettings | None = None) -> list[str]:
    """The entity keys a question may name: its code-like entities and every phrase of its content words.

    A question is short and says each thing once, so unlike :func:`extract` it keeps
    single words and every sub-phrase of a run; the graph looks each key up exactly
    and weighs what it finds by how specific it is.
    """
    settings = settings or ExtractorSettings()
    found = _Found()
    _code_entities(text, found)
    keys = list(found.order)
    for _, phrase in _phrases(text, 99):
        words = phrase.split()
        for n in range(min(settings.max_phrase_words, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                key = normalize(" ".join(words[i : i + n]))
                if key and key not in _STOP and len(key) > 1 and key not in keys:
                    keys.append(key)
    return keys
