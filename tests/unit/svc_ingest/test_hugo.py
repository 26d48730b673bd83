"""Hugo front matter and shortcodes."""

from __future__ import annotations

from svc_ingest.domain.hugo import split_front_matter, strip_shortcodes


def test_yaml_front_matter_becomes_metadata() -> None:
    source = split_front_matter("---\ntitle: Pods\nweight: 10\n---\n\nBody text.\n")
    assert source.title == "Pods"
    assert source.front_matter["weight"] == 10
    assert source.body.strip() == "Body text."


def test_toml_front_matter_becomes_metadata() -> None:
    source = split_front_matter('+++\ntitle = "Nodes"\n+++\nBody.\n')
    assert source.title == "Nodes"
    assert source.body == "Body.\n"


def test_malformed_front_matter_stays_in_the_body() -> None:
    text = "---\ntitle: [unclosed\n---\nBody.\n"
    assert split_front_matter(text).body == text
    assert split_front_matter("No front matter.\n").front_matter == {}


def test_shortcodes_become_the_words_they_stand_for() -> None:
    body = (
        'A {{< glossary_tooltip text="Pod" term_id="pod" >}} runs.\n'
        '{{< feature-state for_k8s_version="v1.27" state="beta" >}}\n'
        "{{< note >}}\nMind the gap.\n{{< /note >}}\n"
        '[Service]({{< ref "/docs/concepts/services-networking/service" >}})\n'
        '## {{% heading "whatsnext" %}}\n'
        "{{< comment >}}Internal remark.{{< /comment >}}\n"
        "{{< mermaid >}}\ngraph LR; a-->b\n{{< /mermaid >}}\n"
        '{{< tabs >}}{{% tab name="Linux" %}}Use apt.{{% /tab %}}{{< /tabs >}}\n'
        "{{< skew currentVersion >}} {{/* a template comment */}}<!-- html comment -->\n"
        "## Owners and dependents {#owners-dependents}\n"
    )
    out = strip_shortcodes(body)
    assert "A Pod runs." in out
    assert "FEATURE STATE: Kubernetes v1.27 [beta]" in out
    assert "Note: \nMind the gap." in out
    assert "[Service](/docs/concepts/services-networking/service)" in out
    assert "## What's next" in out
    assert "Internal remark" not in out
    assert "graph LR" not in out
    assert "Use apt." in out
    assert "{{" not in out and "<!--" not in out
    assert "## Owners and dependents\n" in out
