"""Knowledge-graph extraction: the prompt, the JSON schema the model must follow, and the checks.

The model gets one chunk and must answer with JSON that matches a schema whose
entity labels and relation types are closed enums; generation is constrained
to the schema, and the answer is still checked here (names trimmed and capped,
relations only between entities of the same answer, duplicates dropped), so a
model can never put an unknown label or a dangling edge into the graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

DEFAULT_LABELS: tuple[str, ...] = (
    "Concept",
    "Component",
    "Resource",
    "Tool",
    "Feature",
    "Organization",
    "Person",
    "Location",
    "Event",
)
DEFAULT_RELATIONS: tuple[str, ...] = (
    "PART_OF",
    "USES",
    "DEPENDS_ON",
    "MANAGES",
    "CREATES",
    "CONFIGURES",
    "RUNS_ON",
    "INSTANCE_OF",
    "RELATED_TO",
)
_MAX_NAME_CHARS = 256
_MAX_PROMPT_CHARS = 6000


@dataclass(frozen=True)
class Entity:
    """A named thing a chunk mentions."""

    name: str
    label: str


@dataclass(frozen=True)
class Relation:
    """A typed, directed relation between two entities."""

    source: str
    target: str
    type: str


@dataclass(frozen=True)
class Extraction:
    """Entities and relations found in one chunk."""

    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()


@dataclass(frozen=True)
class GraphSchema:
    """The closed vocabulary extraction may use."""

    labels: tuple[str, ...] = DEFAULT_LABELS
    relations: tuple[str, ...] = DEFAULT_RELATIONS
    max_entities: int = 12
    max_relations: int = 12

    def json_schema(self) -> str:
        """The JSON Schema (as text) that constrains generation."""
        schema = {
            "type": "object",
            "properties": {
                "entities": {
                    "type": "array",
                    "maxItems": self.max_entities,
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": 80},
                            "label": {"type": "string", "enum": list(self.labels)},
                        },
                        "required": ["name", "label"],
                        "additionalProperties": False,
                    },
                },
                "relations": {
                    "type": "array",
                    "maxItems": self.max_relations,
                    "items": {
                        "type": "object",
                        "properties": {
                            "source": {"type": "string", "minLength": 1, "maxLength": 80},
                            "type": {"type": "string", "enum": list(self.relations)},
                            "target": {"type": "string", "minLength": 1, "maxLength": 80},
                        },
                        "required": ["source", "type", "target"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["entities", "relations"],
            "additionalProperties": False,
        }
        return json.dumps(schema, separators=(",", ":"))

    def prompt(self, text: str, title: str, section: str) -> str:
        """The user message asking for the entities and relations of one chunk."""
        where = title if not section else f"{title} > {section}"
        return (
            "Extract a knowledge graph from the passage below.\n"
            f"Entity labels: {', '.join(self.labels)}.\n"
            f"Relation types: {', '.join(self.relations)}.\n"
            "List the specific named things the passage is about (not generic words), then the relations "
            "the passage states between them. Use names exactly as written in the passage. "
            "Answer with JSON only.\n\n"
            f"Document: {where}\n"
            f"Passage:\n{text[:_MAX_PROMPT_CHARS]}"
        )

    def parse(self, answer: str) -> Extraction:
        """Checks and normalises a model answer; an unusable answer yields an empty extraction."""
        try:
            data = json.loads(answer)
        except (json.JSONDecodeError, TypeError):
            return Extraction()
        if not isinstance(data, dict):
            return Extraction()
        labels = {label.lower(): label for label in self.labels}
        types = {t.upper(): t for t in self.relations}
        entities: dict[str, Entity] = {}
        for item in data.get("entities") or []:
            if not isinstance(item, dict):
                continue
            name = " ".join(str(item.get("name", "")).split())[:_MAX_NAME_CHARS]
            label = labels.get(str(item.get("label", "")).lower())
            if name and label and name.lower() not in entities:
                entities[name.lower()] = Entity(name, label)
            if len(entities) >= self.max_entities:
                break
        relations: dict[tuple[str, str, str], Relation] = {}
        for item in data.get("relations") or []:
            if not isinstance(item, dict):
                continue
            source = entities.get(" ".join(str(item.get("source", "")).split()).lower())
            target = entities.get(" ".join(str(item.get("target", "")).split()).lower())
            rel_type = types.get(str(item.get("type", "")).upper())
            if source is None or target is None or rel_type is None or source == target:
                continue
            relations.setdefault((source.name, target.name, rel_type), Relation(source.name, target.name, rel_type))
            if len(relations) >= self.max_relations:
                break
        return Extraction(tuple(entities.values()), tuple(relations.values()))
