"""Graph extraction answers are checked against the closed vocabulary."""

from __future__ import annotations

import json

from svc_ingest.domain.graph import GraphSchema


def test_schema_constrains_labels_and_relation_types() -> None:
    schema = GraphSchema(labels=("Component", "Resource"), relations=("MANAGES",))
    parsed = json.loads(schema.json_schema())
    entity = parsed["properties"]["entities"]["items"]["properties"]
    relation = parsed["properties"]["relations"]["items"]["properties"]
    assert entity["label"]["enum"] == ["Component", "Resource"]
    assert relation["type"]["enum"] == ["MANAGES"]


def test_parse_keeps_only_valid_facts() -> None:
    schema = GraphSchema(labels=("Component", "Resource"), relations=("MANAGES", "USES"))
    answer = json.dumps(
        {
            "entities": [
                {"name": " kubelet ", "label": "component"},
                {"name": "Pod", "label": "Resource"},
                {"name": "Duck", "label": "Animal"},
                {"name": "kubelet", "label": "Resource"},
            ],
            "relations": [
                {"source": "kubelet", "type": "manages", "target": "Pod"},
                {"source": "kubelet", "type": "MANAGES", "target": "Pod"},
                {"source": "kubelet", "type": "EATS", "target": "Pod"},
                {"source": "kubelet", "type": "USES", "target": "Duck"},
                {"source": "Pod", "type": "USES", "target": "Pod"},
            ],
        }
    )
    extraction = schema.parse(answer)
    assert [(e.name, e.label) for e in extraction.entities] == [("kubelet", "Component"), ("Pod", "Resource")]
    assert [(r.source, r.type, r.target) for r in extraction.relations] == [("kubelet", "MANAGES", "Pod")]


def test_unusable_answers_yield_nothing() -> None:
    schema = GraphSchema()
    for answer in ("", "not json", "[]", '{"entities": "x"}'):
        extraction = schema.parse(answer)
        assert extraction.entities == () and extraction.relations == ()


def test_prompt_names_the_vocabulary_and_the_passage() -> None:
    prompt = GraphSchema(labels=("Component",), relations=("USES",)).prompt("The kubelet runs.", "Nodes", "Kubelet")
    assert "Component" in prompt and "USES" in prompt and "The kubelet runs." in prompt and "Nodes > Kubelet" in prompt
