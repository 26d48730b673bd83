from __future__ import annotations

import json

from mesh import channels


def test_each_service_has_a_service_config_that_retries_only_unavailable() -> None:
    for name in (
        "ragmesh.inference.v1.InferenceService",
        "ragmesh.retrieval.v1.RetrievalService",
        "ragmesh.ingest.v1.IngestService",
        "ragmesh.sandbox.v1.SandboxService",
        "ragmesh.agent.v1.AgentService",
    ):
        raw = channels.service_config(name)
        assert raw is not None, name
        for method_config in json.loads(raw)["methodConfig"]:
            assert method_config["timeout"].endswith("s")
            policy = method_config.get("retryPolicy")
            if policy is not None:
                assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
