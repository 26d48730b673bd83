"""Hyperlinks resolved to documents of the same job."""

from __future__ import annotations

from svc_ingest.domain.links import LinkResolver

ROOT = "file:///corpus/k8s-docs"
DOCS = {
    f"{ROOT}/concepts/workloads/pods/_index.md": "pods",
    f"{ROOT}/concepts/workloads/pods/pod-lifecycle.md": "lifecycle",
    f"{ROOT}/concepts/services-networking/service.md": "service",
    f"{ROOT}/tasks/run-application/service.md": "task-service",
    "file:///site/a.html": "a",
    "file:///site/sub/b.html": "b",
}


def resolver() -> LinkResolver:
    return LinkResolver(DOCS.items())


def test_site_absolute_links_match_by_path_suffix() -> None:
    found = resolver().resolve(
        f"{ROOT}/concepts/workloads/pods/pod-lifecycle.md",
        ["/docs/concepts/workloads/pods/", "/docs/concepts/services-networking/service/#type-nodeport"],
    )
    assert found == ["pods", "service"]


def test_relative_links_resolve_against_the_page() -> None:
    assert resolver().resolve("file:///site/a.html", ["sub/b.html", "./a.html"]) == ["b"]
    assert resolver().resolve("file:///site/sub/b.html", ["../a.html"]) == ["a"]


def test_ambiguous_external_and_self_links_are_dropped() -> None:
    found = resolver().resolve(
        f"{ROOT}/concepts/workloads/pods/_index.md",
        ["/service/", "https://example.com/docs/concepts/workloads/pods/", "mailto:x@y", "#anchor", "/docs/nope/"],
    )
    assert found == []


def test_links_that_are_not_urls_are_skipped_not_fatal() -> None:
    # Seen in the noise corpus: a template placeholder in brackets, which urlsplit rejects as an IPv6 host.
    found = resolver().resolve("file:///site/a.html", ["http://[site:url-brief]/x", "sub/b.html", "http://[::1"])
    assert found == ["b"]
