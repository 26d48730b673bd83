"""The rule-based entity extractor: what it finds, how it names it, and what it relates."""

from __future__ import annotations

from mesh.entities import (
    LABEL_COMMAND,
    LABEL_COMPONENT,
    LABEL_CONCEPT,
    LABEL_FIELD,
    LABEL_IDENTIFIER,
    LABEL_KIND,
    REL_COOCCURS,
    REL_UNDER,
    ExtractorSettings,
    extract,
    normalize,
    query_keys,
)

TEXT = """To limit the CPU a container can use, set `resources.limits.cpu` in the container spec.
Run `kubectl drain <node>` before maintenance; a PodDisruptionBudget limits how many Pods are evicted at once.

```yaml
spec:
  containers:
  - name: app
    resources:
      limits:
        cpu: "500m"
```
Set --max-pods on the kubelet. The maxUnavailable field of a Deployment caps unavailable replicas during a
rolling update. A rolling update replaces Pods one by one.
"""


def _labels(text: str, **kwargs: str) -> dict[str, str]:
    return {normalize(e.name): e.label for e in extract(text, **kwargs).entities}


def test_commands_kinds_fields_identifiers_and_components() -> None:
    found = _labels(TEXT)
    assert found["kubectl drain"] == LABEL_COMMAND
    assert found["pod disruption budget"] == LABEL_KIND
    assert found["deployment"] == LABEL_KIND
    assert found["resources.limits.cpu"] == LABEL_FIELD
    assert found["max unavailable"] == LABEL_FIELD
    assert found["--max-pods"] == LABEL_IDENTIFIER
    assert found["kubelet"] == LABEL_COMPONENT
    assert found["rolling update"] == LABEL_CONCEPT


def test_yaml_blocks_give_key_paths_through_list_items() -> None:
    found = _labels("```\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        cpu: 1\n```")
    assert {"resources.limits.cpu", "limits.cpu", "containers.resources"} <= set(found)
    assert "name.resources" not in found, "a list item's key is a sibling of the next key, not its parent"


def test_file_names_hosts_and_prose_are_not_fields_or_commands() -> None:
    found = _labels("Save it as pod.yaml and open example.com. The kubectl tool is handy. Use kubectl to apply it.")
    assert "pod.yaml" not in found and "example.com" not in found
    assert not any(label == LABEL_COMMAND for label in found.values()), found


def test_a_capital_at_a_sentence_start_is_not_a_kind() -> None:
    assert _labels("Service quality matters. Ask twice.").get("service") != LABEL_KIND
    assert _labels("Create a Service for it.")["service"] == LABEL_KIND


def test_normalize_folds_case_plural_backticks_and_pascal_case() -> None:
    same = {normalize(n) for n in ("PodDisruptionBudgets", "`PodDisruptionBudget`", "pod disruption budgets")}
    assert same == {"pod disruption budget"}
    assert normalize("Network Policies") == normalize("network policy") == "network policy"
    assert normalize("  Kube-Proxy \n daemon ") == "kube-proxy daemon"
    # Code keeps its form except for case; a command is not made singular.
    assert normalize("resources.limits.CPU") == "resources.limits.cpu"
    assert normalize("kubectl logs") == "kubectl logs"
    assert normalize("--max-pods") == "--max-pods"
    assert normalize("status") == "status" and normalize("address") == "address"
    assert normalize(" `` ") == ""


def test_relations_come_from_sentences_and_headings() -> None:
    got = extract(
        "A PodDisruptionBudget limits voluntary evictions. The kubectl drain command respects it.",
        title="Disruptions",
        section="Pod disruption budgets",
    )
    rels = {(normalize(r.source), normalize(r.target), r.type) for r in got.relations}
    assert ("pod disruption budget", "voluntary eviction", REL_COOCCURS) in rels
    assert ("kubectl drain", "pod disruption budget", REL_COOCCURS) not in rels, "different sentences"
    assert ("kubectl drain", "disruption", REL_UNDER) in rels or (
        "kubectl drain",
        "pod disruption budget",
        REL_UNDER,
    ) in rels
    names = {normalize(e.name) for e in got.entities}
    assert "disruption" in names, "the title's entities are mentioned by every chunk under it"
    assert all(normalize(r.source) in names and normalize(r.target) in names for r in got.relations)


def test_bounds_hold() -> None:
    settings = ExtractorSettings(max_entities=5, max_relations=7, max_sentence_entities=3)
    text = " ".join(f"The Alpha{i}Beta object and the gamma{i} delta{i} phrase." for i in range(40))
    got = extract(text, settings=settings)
    assert len(got.entities) <= 5 and len(got.relations) <= 7


def test_query_keys_use_the_same_normalizer() -> None:
    keys = query_keys("How do I set `resources.limits.cpu` for PodDisruptionBudgets with kubectl drain?")
    assert {"resources.limits.cpu", "pod disruption budget", "kubectl drain"} <= set(keys)
    assert query_keys("What is the difference between a StatefulSet and Deployments?")[:2] == [
        "stateful set",
        "deployment",
    ]
    assert "the" not in query_keys("the of and") and query_keys("the of and") == []
