"""Markdown as static-site generators write it: front matter and Hugo shortcodes.

Front matter (YAML between ``---`` lines or TOML between ``+++`` lines) becomes
document metadata (the title above all) instead of chunk text. Shortcodes are
template calls, not prose: the ones that carry words people read
(``glossary_tooltip text=...``, ``feature-state``, ``heading``, admonitions,
``ref`` inside links) are replaced by those words; paired ones (tabs, tables)
keep their content; comments and diagrams are dropped with their content; every
other shortcode is removed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import yaml

_YAML_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_TOML_FRONT = re.compile(r"\A\ufeff?\+\+\+[ \t]*\r?\n(.*?)\r?\n\+\+\+[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# {{< name args >}} and {{% name args %}}; a closing tag starts with "/".
_SHORTCODE = re.compile(r"\{\{(?P<delim>[<%])\s*(?P<close>/)?\s*(?P<name>[\w.-]+)(?P<args>.*?)\s*[>%]\}\}", re.DOTALL)
_HUGO_COMMENT = re.compile(r"\{\{/\*.*?\*/\}\}", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# Heading attributes such as "## Owners {#owners-dependents}" (an id for anchors, not text).
_HEADING_ATTRS = re.compile(r"^(#{1,6}[^\n]*?)\s*\{[#.][^}\n]*\}[ \t]*$", re.MULTILINE)
_ARG = re.compile(r'(?:(?P<key>[\w-]+)\s*=\s*)?(?:"(?P<dq>[^"]*)"|`(?P<bq>[^`]*)`|(?P<bare>[^\s"`]+))')
# Paired shortcodes whose content is not prose.
_DROP_WITH_CONTENT = frozenset({"comment", "mermaid"})
_ADMONITIONS = {"note": "Note:", "caution": "Caution:", "warning": "Warning:", "alert": "Note:"}
_HEADINGS = {
    "whatsnext": "What's next",
    "prerequisites": "Before you begin",
    "objectives": "Objectives",
    "cleanup": "Cleaning up",
    "synopsis": "Synopsis",
    "options": "Options",
    "seealso": "See also",
    "options-inherited": "Options inherited from parent commands",
}


@dataclass(frozen=True)
class MarkdownSource:
    """Markdown body with its front matter taken apart."""

    body: str
    front_matter: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The front matter's title, or "" when it has none."""
        value = self.front_matter.get("title") or self.front_matter.get("linkTitle") or ""
        return str(value).strip()


def split_front_matter(text: str) -> MarkdownSource:
    """Separates YAML or TOML front matter from the body; malformed front matter stays in the body."""
    for pattern, loader in ((_YAML_FRONT, _load_yaml), (_TOML_FRONT, _load_toml)):
        match = pattern.match(text)
        if match is None:
            continue
        data = loader(match.group(1))
        if data is None:
            return MarkdownSource(body=text)
        return MarkdownSource(body=text[match.end() :], front_matter=data)
    return MarkdownSource(body=text)


def _load_yaml(raw: str) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _load_toml(raw: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError:
        return None


def _args(raw: str) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    named: dict[str, str] = {}
    for m in _ARG.finditer(raw):
        value = next((v for v in (m.group("dq"), m.group("bq"), m.group("bare")) if v is not None), "")
        if m.group("key"):
            named[m.group("key")] = value
        else:
            positional.append(value)
    return positional, named


def _replacement(name: str, closing: bool, raw_args: str) -> str:
    if closing:
        return ""
    positional, named = _args(raw_args)
    if name == "glossary_tooltip":
        return named.get("text", "")
    if name == "feature-state":
        version = named.get("for_k8s_version", "")
        state = named.get("state", "")
        return f"FEATURE STATE: Kubernetes {version} [{state}]".replace("  ", " ") if state else ""
    if name in ("ref", "relref"):
        return positional[0] if positional else ""
    if name == "heading":
        key = positional[0] if positional else ""
        return _HEADINGS.get(key, key.replace("-", " ").capitalize())
    if name in _ADMONITIONS:
        return _ADMONITIONS[name] + " "
    if name == "link":
        return named.get("text", "")
    return ""


def strip_shortcodes(body: str) -> str:
    """Replaces Hugo shortcodes by the words they stand for (see the module docstring)."""
    body = _HUGO_COMMENT.sub("", body)
    body = _HTML_COMMENT.sub("", body)
    body = _HEADING_ATTRS.sub(r"\1", body)
    out: list[str] = []
    pos = 0
    dropping: str | None = None
    for m in _SHORTCODE.finditer(body):
        name = m.group("name")
        closing = m.group("close") is not None
        if dropping is not None:
            if closing and name == dropping:
                dropping = None
                pos = m.end()
            continue
        out.append(body[pos : m.start()])
        pos = m.end()
        if name in _DROP_WITH_CONTENT and not closing:
            dropping = name
            continue
        out.append(_replacement(name, closing, m.group("args")))
    if dropping is None:
        out.append(body[pos:])
    return "".join(out)
