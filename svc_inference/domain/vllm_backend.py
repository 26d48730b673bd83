"""The vLLM generation backend: AsyncLLMEngine with continuous batching and guided decoding.

vLLM is imported only when this backend is built (it is not installed on CPU
machines). The engine batches every in-flight request itself, so the Serve
deployment keeps many requests ongoing per replica instead of using
``@serve.batch``. A cancelled or timed-out request is aborted in the engine,
which frees its sequence slot and KV blocks.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from mesh.errors import FieldViolation, InvalidArgument, Unavailable
from svc_inference.domain.chat_templates import Segment
from svc_inference.domain.model import FinishReason, GenerationChunk, GenerationSummary
from svc_inference.domain.model_config import LLMConfig
from svc_inference.domain.plan import GenerationPlan
from svc_inference.domain.stats import GenerationCounters

# Keywords vLLM's structured-output backends (xgrammar, guidance) do not enforce.
VLLM_UNENFORCEABLE = frozenset(
    {"not", "if", "then", "else", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems", "contains"}
)
_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH, "abort": FinishReason.CANCELLED}


class VLLMNotAvailable(RuntimeError):
    """vLLM or a CUDA device is missing on this machine."""


def import_vllm() -> Any:
    """The vllm module, or VLLMNotAvailable saying why it cannot be used here."""
    try:
        import vllm
    except ImportError as exc:
        raise VLLMNotAvailable(
            "the vllm backend needs the vllm package and a CUDA GPU; it is not installed in this environment "
            f"({exc}). Use the local profile (llama.cpp) on CPU machines."
        ) from exc
    return vllm


def engine_kwargs(config: LLMConfig, model_path: Path) -> dict[str, Any]:
    """AsyncEngineArgs keyword arguments for ``config``."""
    settings = config.vllm
    if settings is None:
        raise ValueError(f"model {config.name} has no vllm settings")
    kwargs: dict[str, Any] = {
        "model": str(model_path),
        "tokenizer": str(model_path),
        "served_model_name": config.name,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "max_model_len": settings.max_model_len,
        "max_num_seqs": settings.max_num_seqs,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "dtype": settings.dtype,
        "enforce_eager": settings.enforce_eager,
    }
    if settings.quantization:
        kwargs["quantization"] = settings.quantization
    if settings.distributed_executor_backend:
        kwargs["distributed_executor_backend"] = settings.distributed_executor_backend
    kwargs.update(settings.extra)
    return kwargs


def sampling_kwargs(
    plan: GenerationPlan, max_new_tokens: int, stop_token_ids: Sequence[int], sampling_module: Any
) -> dict[str, Any]:
    """SamplingParams keyword arguments for ``plan``, including guided decoding when it has a schema."""
    kwargs: dict[str, Any] = {
        "n": 1,
        "temperature": plan.temperature,
        "top_p": plan.top_p,
        # vLLM disables top-k with -1 (0 in newer releases); -1 works in both.
        "top_k": plan.top_k if plan.top_k > 0 else -1,
        "min_p": plan.min_p,
        "max_tokens": max_new_tokens,
        "repetition_penalty": plan.repeat_penalty,
        "stop": list(plan.stop),
        "stop_token_ids": list(stop_token_ids),
        "seed": plan.seed,
        "output_kind": sampling_module.RequestOutputKind.DELTA,
    }
    if plan.schema is not None:
        if hasattr(sampling_module, "StructuredOutputsParams"):
            kwargs["structured_outputs"] = sampling_module.StructuredOutputsParams(json=plan.schema.document)
        elif hasattr(sampling_module, "GuidedDecodingParams"):
            kwargs["guided_decoding"] = sampling_module.GuidedDecodingParams(json=plan.schema.document)
        else:
            raise Unavailable("this vLLM build has no structured output support", reason="NO_GUIDED_DECODING")
    return kwargs


class VLLMBackend:
    """Streams completions from a vLLM AsyncLLMEngine."""

    name = "vllm"
    unenforceable = VLLM_UNENFORCEABLE

    def __init__(self, config: LLMConfig, model_path: Path) -> None:
        vllm = import_vllm()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from vllm import sampling_params
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.engine.async_llm_engine import AsyncLLMEngine

        self._vllm = vllm
        self._sampling = sampling_params
        self._config = config
        self._engine: Any = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**engine_kwargs(config, model_path)))
        self._tokenizer: Any = None
        self._stop_ids = tuple(config.stop_token_ids)

    @property
    def context_length(self) -> int:
        """Tokens of context, prompt plus completion."""
        return self._config.context_length

    async def check_health(self) -> None:
        """Raises when the engine is dead (Serve then replaces the replica)."""
        await self._engine.check_health()

    def close(self) -> None:
        """Shuts the engine down."""
        shutdown = getattr(self._engine, "shutdown", None)
        if callable(shutdown):
            shutdown()

    async def tokenize(self, segments: Sequence[Segment]) -> list[int]:
        """Prompt token ids: BOS, markup with special tokens parsed, message text with them split."""
        if self._tokenizer is None:
            self._tokenizer = await self._engine.get_tokenizer()
        tokenizer = self._tokenizer
        ids: list[int] = []
        if tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", True):
            ids.append(int(tokenizer.bos_token_id))
        for segment in segments:
            encoded = tokenizer(segment.text, add_special_tokens=False, split_special_tokens=not segment.markup)
            ids.extend(int(i) for i in encoded["input_ids"])
        return ids

    async def stream(self, plan: GenerationPlan, counters: GenerationCounters) -> AsyncIterator[GenerationChunk]:
        """Generates for ``plan``; aborts the engine request when the caller stops or time runs out."""
        prompt_ids = await self.tokenize(plan.segments)
        room = self.context_length - len(prompt_ids)
        if room < 1:
            raise InvalidArgument(
                f"the prompt is {len(prompt_ids)} tokens; model {plan.model} has a context of "
                f"{self.context_length} tokens for prompt and completion together",
                reason="PROMPT_TOO_LONG",
                metadata={"prompt_tokens": str(len(prompt_ids)), "context_length": str(self.context_length)},
                violations=[FieldViolation("messages" if plan.is_chat else "prompt", "longer than the context")],
            )
        params = self._sampling.SamplingParams(
            **sampling_kwargs(plan, min(plan.max_tokens, room), self._stop_ids, self._sampling)
        )
        request_id = uuid.uuid4().hex
        counters.start()
        produced = 0
        first_at: float | None = None
        last_at = 0.0
        finish: FinishReason | None = None
        try:
            async for output in self._engine.generate({"prompt_token_ids": prompt_ids}, params, request_id):
                if plan.deadline_monotonic is not None and time.monotonic() >= plan.deadline_monotonic:
                    finish = FinishReason.CANCELLED
                    break
                completion = output.outputs[0]
                new_tokens = len(completion.token_ids)
                if new_tokens:
                    now = time.perf_counter()
                    first_at = now if first_at is None else first_at
                    last_at = now
                    produced += new_tokens
                    counters.token(new_tokens)
                if completion.text:
                    yield GenerationChunk(delta=completion.text)
                if output.finished:
                    finish = _FINISH.get(completion.finish_reason or "stop", FinishReason.STOP)
                    break
        except (asyncio.CancelledError, GeneratorExit):
            await asyncio.shield(self._engine.abort(request_id))
            counters.finish(FinishReason.CANCELLED)
            raise
        except Exception as exc:
            counters.fail()
            await asyncio.shield(self._engine.abort(request_id))
            raise Unavailable(
                f"the vLLM engine of {plan.model} failed: {exc}",
                reason="BACKEND_FAILED",
                metadata={"model": plan.model},
            ) from exc
        if finish is FinishReason.CANCELLED:
            await self._engine.abort(request_id)
        finish = finish or FinishReason.STOP
        counters.finish(finish)
        ended = time.perf_counter()
        first = first_at if first_at is not None else ended
        decode_s = last_at - first
        yield GenerationChunk(
            summary=GenerationSummary(
                model=plan.model,
                prompt_tokens=len(prompt_ids),
                completion_tokens=produced,
                finish_reason=finish,
                time_to_first_token_ms=(first - plan.received_at) * 1000.0,
                tokens_per_second=(produced - 1) / decode_s if produced > 1 and decode_s > 0 else 0.0,
                total_ms=(ended - plan.received_at) * 1000.0,
            )
        )
