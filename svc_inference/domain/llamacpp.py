"""The llama.cpp generation backend (llama-cpp-python), one sequence at a time.

Generation runs on one worker thread that owns the model; tokens reach the
event loop through a queue and are coalesced into one delta per wake-up, so a
slow reader gets fewer, larger messages instead of a growing backlog. The
model slot is released when the worker thread finishes, not when the caller
goes away, so a cancelled request can never overlap the next one on the
(not thread-safe) llama context.

Sampling drives llama.cpp's sampler chain directly rather than through
``Llama.generate``: schema-constrained output samples without the grammar
first and only applies the grammar to the whole vocabulary when the grammar
rejects that token (what llama.cpp's own server does). Gemma's 262k-token
vocabulary makes the full grammar pass the expensive part of each step.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import dataclasses
import importlib
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mesh.errors import FieldViolation, InvalidArgument, Unavailable
from svc_inference.domain.admission import PrioritySlots
from svc_inference.domain.chat_templates import Segment
from svc_inference.domain.model import FinishReason, GenerationChunk, GenerationSummary
from svc_inference.domain.model_config import LLMConfig
from svc_inference.domain.plan import GenerationPlan
from svc_inference.domain.stats import GenerationCounters
from svc_inference.domain.stop import StopMatcher
from svc_inference.domain.structured import FIELD as SCHEMA_FIELD
from svc_inference.domain.structured import LLAMACPP_UNENFORCEABLE, JsonSchema

log = logging.getLogger(__name__)

# llama_token_data {int32 id; float logit; float p;}: 12 bytes, no padding.
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
# JSON strings may not contain raw control characters; the converter's own "char" rule allows
# them, which would let the model emit a string that strict JSON parsers refuse.
_STRICT_CHAR_RULE = r'char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_MAX_CONSECUTIVE_FAILURES = 3
_GRAMMAR_CACHE_SIZE = 256


@dataclasses.dataclass
class _Job:
    plan: GenerationPlan
    prompt_tokens: list[int]
    max_new_tokens: int
    grammar_text: str | None
    emit: Callable[[tuple[str, Any]], None]
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        deadline = self.plan.deadline_monotonic
        return self.cancel.is_set() or (deadline is not None and time.monotonic() >= deadline)


class LlamaCppBackend:
    """Streams completions from one GGUF model; one generation at a time, the rest wait for the slot."""

    name = "llamacpp"
    unenforceable = LLAMACPP_UNENFORCEABLE

    def __init__(self, config: LLMConfig, model_path: Path) -> None:
        import llama_cpp

        self._lib: Any = llama_cpp
        self._config = config
        settings = config.llamacpp
        self._llm: Any = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=config.context_length,
            n_threads=settings.threads,
            n_threads_batch=settings.threads_batch,
            n_batch=settings.n_batch,
            last_n_tokens_size=config.sampling.repeat_last_n,
            verbose=False,
        )
        self._vocab = self._llm._model.vocab
        self._n_vocab = int(self._llm.n_vocab())
        self._n_ctx = int(self._llm.n_ctx())
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._bos = int(llama_cpp.llama_vocab_bos(self._vocab))
        self._stop_ids = frozenset(config.stop_token_ids)
        # Reused by every sampling step; only the worker thread touches them.
        self._candidates = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
        self._token_ids = np.arange(self._n_vocab, dtype=np.intc)
        self._single = (llama_cpp.llama_token_data * 1)()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llamacpp-{config.name}")
        # One generation at a time; a waiting interactive request (the agent's answer) goes before waiting
        # batch ones (ingest's graph extraction).
        self._slot = PrioritySlots(1)
        self._grammars: dict[str, str] = {}
        self._failures = 0

    @property
    def context_length(self) -> int:
        """Tokens of context, prompt plus completion."""
        return self._n_ctx

    async def check_health(self) -> None:
        """Raises when recent generations failed in the backend itself (Serve then replaces the replica)."""
        if self._failures >= _MAX_CONSECUTIVE_FAILURES:
            raise RuntimeError(
                f"llama.cpp backend of {self._config.name}: {self._failures} generations failed in a row"
            )

    def close(self) -> None:
        """Stops the worker thread and frees the model."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._llm.close()

    def tokenize(self, segments: Sequence[Segment]) -> list[int]:
        """Prompt tokens: BOS (when the model wants one), markup with special tokens, text without."""
        tokens = [self._bos] if self._add_bos else []
        for segment in segments:
            tokens.extend(self._llm.tokenize(segment.text.encode("utf-8"), add_bos=False, special=segment.markup))
        return tokens

    async def stream(self, plan: GenerationPlan, counters: GenerationCounters) -> AsyncIterator[GenerationChunk]:
        """Generates for ``plan``; stops when the caller stops iterating, is cancelled or runs out of time."""
        prompt_tokens = await asyncio.to_thread(self.tokenize, plan.segments)
        room = self._n_ctx - len(prompt_tokens)
        if room < 1:
            raise InvalidArgument(
                f"the prompt is {len(prompt_tokens)} tokens; model {plan.model} has a context of {self._n_ctx} "
                "tokens for prompt and completion together",
                reason="PROMPT_TOO_LONG",
                metadata={"prompt_tokens": str(len(prompt_tokens)), "context_length": str(self._n_ctx)},
                violations=[
                    FieldViolation(
                        "messages" if plan.is_chat else "prompt",
                        f"{len(prompt_tokens)} tokens; the limit is {self._n_ctx - 1}",
                    )
                ],
            )
        grammar_text = self._grammar_text(plan.schema) if plan.schema is not None else None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def emit(event: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:
                # The caller's event loop is gone (the process is shutting down): nobody listens any more.
                job.cancel.set()

        job = _Job(plan, prompt_tokens, min(plan.max_tokens, room), grammar_text, emit)
        counters.waiting(1)
        try:
            await self._slot.acquire(plan.priority)
        finally:
            counters.waiting(-1)
        try:
            future = loop.run_in_executor(self._executor, self._run, job, counters)
        except BaseException:
            self._slot.release()
            raise
        # The slot frees when the thread is done with the model, whatever the caller does meanwhile.
        future.add_done_callback(lambda _: self._slot.release())
        finished = False
        try:
            while True:
                events = [await queue.get()]
                while not queue.empty():
                    events.append(queue.get_nowait())
                text = "".join(value for kind, value in events if kind == "text")
                if text:
                    yield GenerationChunk(delta=text)
                for kind, value in events:
                    if kind == "error":
                        finished = True
                        raise value
                    if kind == "done":
                        finished = True
                        yield GenerationChunk(summary=value)
                        return
        finally:
            if not finished:
                job.cancel.set()

    def _run(self, job: _Job, counters: GenerationCounters) -> None:
        lib = self._lib
        plan = job.plan
        chain = self._sampler_chain(plan)
        grammar = None
        counters.start()
        finish: FinishReason | None = None
        try:
            if job.grammar_text is not None:
                grammar = lib.llama_sampler_init_grammar(self._vocab, job.grammar_text.encode("utf-8"), b"root")
                if not grammar:
                    raise RuntimeError("llama.cpp refused a grammar it had accepted before")
            self._prefill(job.prompt_tokens)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            matcher = StopMatcher(plan.stop)
            produced = 0
            first_at: float | None = None
            last_at = 0.0
            while True:
                if job.should_stop():
                    finish = FinishReason.CANCELLED
                    break
                token = self._sample(chain, grammar)
                now = time.perf_counter()
                if first_at is None:
                    first_at = now
                if lib.llama_vocab_is_eog(self._vocab, token) or token in self._stop_ids:
                    finish = FinishReason.STOP
                    break
                if grammar is not None:
                    lib.llama_sampler_accept(grammar, token)
                produced += 1
                last_at = now
                counters.token()
                text = matcher.push(decoder.decode(self._llm.detokenize([token])))
                if text:
                    job.emit(("text", text))
                if matcher.stopped:
                    finish = FinishReason.STOP
                    break
                if produced >= job.max_new_tokens:
                    finish = FinishReason.LENGTH
                    break
                self._llm.eval([token])
            if finish is not FinishReason.CANCELLED and not matcher.stopped:
                tail = matcher.push(decoder.decode(b"", final=True)) + matcher.flush()
                if tail:
                    job.emit(("text", tail))
                if matcher.stopped:
                    # The held-back tail held a stop sequence: the answer ended there, not at the token limit.
                    finish = FinishReason.STOP
            ended = time.perf_counter()
            first = first_at if first_at is not None else ended
            decode_s = last_at - first
            summary = GenerationSummary(
                model=plan.model,
                prompt_tokens=len(job.prompt_tokens),
                completion_tokens=produced,
                finish_reason=finish,
                time_to_first_token_ms=(first - plan.received_at) * 1000.0,
                tokens_per_second=(produced - 1) / decode_s if produced > 1 and decode_s > 0 else 0.0,
                total_ms=(ended - plan.received_at) * 1000.0,
            )
            counters.finish(finish)
            self._failures = 0
            job.emit(("done", summary))
        except Exception as exc:
            counters.fail()
            self._failures += 1
            log.exception("llama.cpp generation failed for model %s", plan.model)
            self._llm.reset()
            job.emit(
                (
                    "error",
                    Unavailable(
                        f"the llama.cpp backend of {plan.model} failed: {exc}",
                        reason="BACKEND_FAILED",
                        metadata={"model": plan.model},
                    ),
                )
            )
        finally:
            if grammar:
                lib.llama_sampler_free(grammar)
            chain.close()

    def _sampler_chain(self, plan: GenerationPlan) -> Any:
        internals: Any = importlib.import_module("llama_cpp._internals")
        chain = internals.LlamaSampler()
        if plan.repeat_penalty != 1.0:
            chain.add_penalties(self._n_vocab, plan.repeat_last_n, plan.repeat_penalty, 0.0, 0.0)
        if plan.temperature == 0.0:
            chain.add_greedy()
            return chain
        if plan.top_k > 0:
            chain.add_top_k(plan.top_k)
        chain.add_top_p(plan.top_p, 1)
        if plan.min_p > 0:
            chain.add_min_p(plan.min_p, 1)
        chain.add_temp(plan.temperature)
        seed = plan.seed if plan.seed is not None else secrets.randbits(32)
        chain.add_dist(seed & 0xFFFFFFFF)
        return chain

    def _prefill(self, tokens: list[int]) -> None:
        # Reuse the KV cache for the prefix this prompt shares with the previous one (a common
        # system prompt or chat history); at least the last prompt token is evaluated again
        # so the logits are fresh.
        llm = self._llm
        cached = llm._input_ids[: llm.n_tokens].tolist()
        prefix = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            prefix += 1
        prefix = min(prefix, len(tokens) - 1)
        if prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
            llm.n_tokens = prefix
        else:
            llm.n_tokens = 0
        llm.eval(tokens[llm.n_tokens :])

    def _sample(self, chain: Any, grammar: Any) -> int:
        lib = self._lib
        candidates = self._fill_candidates()
        lib.llama_sampler_apply(chain.sampler, ctypes.byref(candidates))
        token = int(candidates.data[candidates.selected].id)
        if grammar is not None and not self._grammar_accepts(grammar, token):
            candidates = self._fill_candidates()
            lib.llama_sampler_apply(grammar, ctypes.byref(candidates))
            lib.llama_sampler_apply(chain.sampler, ctypes.byref(candidates))
            if candidates.selected < 0:
                raise RuntimeError("no token satisfies the grammar")
            token = int(candidates.data[candidates.selected].id)
        lib.llama_sampler_accept(chain.sampler, token)
        return token

    def _fill_candidates(self) -> Any:
        lib = self._lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._llm._ctx.ctx, -1), shape=(self._n_vocab,))
        candidates = self._candidates
        candidates["id"] = self._token_ids
        candidates["logit"] = logits
        candidates["p"] = 0.0
        return lib.llama_token_data_array(
            data=candidates.ctypes.data_as(lib.llama_token_data_p), size=self._n_vocab, selected=-1, sorted=False
        )

    def _grammar_accepts(self, grammar: Any, token: int) -> bool:
        lib = self._lib
        single: Any = self._single
        single[0].id = token
        single[0].logit = 1.0
        single[0].p = 0.0
        one = lib.llama_token_data_array(
            data=ctypes.cast(single, lib.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        lib.llama_sampler_apply(grammar, ctypes.byref(one))
        return not math.isinf(single[0].logit)

    def _grammar_text(self, schema: JsonSchema) -> str:
        cached = self._grammars.get(schema.text)
        if cached is not None:
            return cached
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        try:
            text = strict_json_strings(json_schema_to_gbnf(schema.text))
        except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InvalidArgument(
                f"the llama.cpp backend cannot turn this json_schema into a grammar: {exc}",
                reason="UNSUPPORTED_JSON_SCHEMA",
                violations=[FieldViolation(SCHEMA_FIELD, f"cannot be enforced: {exc}")],
            ) from None
        # Parse it once here, so a grammar llama.cpp refuses is the caller's error, before the model slot.
        probe = self._lib.llama_sampler_init_grammar(self._vocab, text.encode("utf-8"), b"root")
        if not probe:
            raise InvalidArgument(
                "llama.cpp could not parse the grammar made from this json_schema",
                reason="UNSUPPORTED_JSON_SCHEMA",
                violations=[FieldViolation(SCHEMA_FIELD, "cannot be enforced by the llama.cpp backend")],
            )
        self._lib.llama_sampler_free(probe)
        if len(self._grammars) >= _GRAMMAR_CACHE_SIZE:
            self._grammars.pop(next(iter(self._grammars)))
        self._grammars[schema.text] = text
        return text


def strict_json_strings(grammar: str) -> str:
    """``grammar`` with its JSON string character rule replaced by one that excludes control characters."""
    lines = grammar.splitlines()
    replaced = [(_STRICT_CHAR_RULE if line.startswith("char ::=") else line) for line in lines]
    return "\n".join(replaced)
