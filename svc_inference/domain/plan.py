"""From a generation request to what a backend runs: prompt segments and resolved sampling settings."""

from __future__ import annotations

import dataclasses
import time

from svc_inference.domain.chat_templates import Segment, check_not_empty, raw_prompt, render
from svc_inference.domain.model import GenerateRequest, Priority
from svc_inference.domain.model_config import LLMConfig
from svc_inference.domain.structured import JsonSchema, check_enforceable, parse_schema


@dataclasses.dataclass(frozen=True, eq=False)
class GenerationPlan:
    """Everything a backend needs for one generation, defaults filled in."""

    model: str
    segments: tuple[Segment, ...]
    is_chat: bool
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    max_tokens: int
    repeat_penalty: float
    repeat_last_n: int
    seed: int | None
    stop: tuple[str, ...]
    schema: JsonSchema | None
    received_at: float
    """time.perf_counter() when the request reached the backend (time to first token counts from here)."""
    deadline_monotonic: float | None
    """time.monotonic() at which the caller stops waiting; None for no deadline."""
    priority: Priority = Priority.INTERACTIVE
    """Interactive generations get the model slot before waiting batch ones."""


def make_plan(
    config: LLMConfig, request: GenerateRequest, *, unenforceable: frozenset[str], backend: str
) -> GenerationPlan:
    """Checks ``request`` and resolves it against ``config``; raises INVALID_ARGUMENT for bad input."""
    received_at = time.perf_counter()
    check_not_empty(request.prompt, request.messages)
    schema = parse_schema(request.json_schema)
    if schema is not None:
        check_enforceable(schema, unenforceable, backend)
    segments = render(config.chat_template, request.messages) if request.messages else raw_prompt(request.prompt)
    sampling = request.sampling
    defaults = config.sampling
    # The model's own stop sequences end free text; with a schema the grammar decides where
    # the output ends, and a stop sequence inside a JSON string would cut it short.
    stop = tuple(sampling.stop) if schema is not None else (*config.stop, *sampling.stop)
    deadline = None if request.timeout_s is None else time.monotonic() + request.timeout_s
    return GenerationPlan(
        model=config.name,
        segments=segments,
        is_chat=bool(request.messages),
        temperature=defaults.temperature if sampling.temperature is None else sampling.temperature,
        top_p=defaults.top_p if sampling.top_p is None else sampling.top_p,
        top_k=defaults.top_k,
        min_p=defaults.min_p,
        max_tokens=defaults.max_tokens if sampling.max_tokens is None else sampling.max_tokens,
        repeat_penalty=defaults.repeat_penalty if sampling.repeat_penalty is None else sampling.repeat_penalty,
        repeat_last_n=defaults.repeat_last_n,
        seed=sampling.seed,
        stop=stop,
        schema=schema,
        received_at=received_at,
        deadline_monotonic=deadline,
        priority=request.priority,
    )
