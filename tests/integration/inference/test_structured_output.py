"""Schema-constrained generation: every output parses and validates."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from ragmesh.inference.v1 import inference_service_pb2 as pb
from tests.integration.inference.support import generate
from tests.support.inference import Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SCHEMAS: dict[str, dict[str, Any]] = {
    "sentiment": {
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "confidence": {"type": "number"},
            "keywords": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
        },
        "required": ["sentiment", "confidence", "keywords"],
    },
    "entity": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 40},
            "kind": {"enum": ["person", "place", "organization", "thing"]},
            "mentions": {"type": "integer"},
        },
        "required": ["name", "kind", "mentions"],
        "additionalProperties": False,
    },
    "answer": {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "maxLength": 80},
            "confident": {"type": "boolean"},
            "sources": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
        },
        "required": ["answer", "confident", "sources"],
    },
    "plan": {
        "type": "object",
        "properties": {
            "action": {"enum": ["answer", "retrieve", "calculate"]},
            "query": {"anyOf": [{"type": "string", "maxLength": 60}, {"type": "null"}]},
        },
        "required": ["action", "query"],
    },
}

PROMPTS: list[tuple[str, str]] = [
    ("sentiment", "Classify the review: I love this product, it works great!"),
    ("sentiment", "Classify the review: Terrible. It broke after one day."),
    ("sentiment", "Classify the review: It is fine, nothing special."),
    ("sentiment", "Classify: the delivery was late but the support team was kind."),
    ("sentiment", "Classify the tweet: Kubernetes upgrades went smoothly today!"),
    ("entity", "Extract the main entity: Paris is the capital of France."),
    ("entity", "Extract the main entity: Ada Lovelace wrote the first program."),
    ("entity", "Extract the main entity: The Cloud Native Computing Foundation hosts Kubernetes."),
    ("entity", "Extract the main entity: A kubelet runs on every node."),
    ("entity", "Extract the main entity: Mount Everest is the highest mountain."),
    ("answer", "Question: What does a Pod contain? Context [1]: A Pod groups one or more containers."),
    ("answer", "Question: Which port does HTTPS use? Context [1]: HTTPS uses port 443."),
    ("answer", "Question: What is etcd? Context [2]: etcd is a consistent key-value store."),
    ("answer", "Question: Who schedules Pods? Context [1]: The scheduler assigns Pods to nodes."),
    ("answer", "Question: What is the boiling point of water at sea level?"),
    ("plan", "Decide the next step. User asks: how many replicas does my deployment have?"),
    ("plan", "Decide the next step. User asks: what is 17 times 23?"),
    ("plan", "Decide the next step. User says: thank you!"),
    ("plan", "Decide the next step. User asks: how do I configure a liveness probe?"),
    ("plan", "Decide the next step. User asks: what is the square root of 144?"),
]


def _request(schema: str, prompt: str, seed: int) -> pb.StreamGenerateRequest:
    return pb.StreamGenerateRequest(
        messages=[pb.ChatMessage(role=pb.ROLE_USER, content=prompt)],
        json_schema=json.dumps(SCHEMAS[schema]),
        sampling=pb.SamplingParams(temperature=0.7, seed=seed, max_tokens=256),
    )


async def test_twenty_prompts_parse_and_validate_on_ray_serve(serve_stack: Stack) -> None:
    assert len(PROMPTS) == 20 and len({p for _, p in PROMPTS}) == 20
    for seed, (schema, prompt) in enumerate(PROMPTS):
        received = await generate(serve_stack.stub, _request(schema, prompt, seed), timeout_s=180)
        assert received.summary.finish_reason == pb.FINISH_REASON_STOP, (prompt, received.text)
        document = json.loads(received.text)
        jsonschema.validate(document, SCHEMAS[schema])


async def test_structured_output_in_process(inprocess_stack: Stack) -> None:
    for seed, (schema, prompt) in enumerate(PROMPTS[::5]):
        received = await generate(inprocess_stack.stub, _request(schema, prompt, seed), timeout_s=180)
        jsonschema.validate(json.loads(received.text), SCHEMAS[schema])
