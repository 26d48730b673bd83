"""The llama.cpp backend's failure path, with the real packaged model and a fault injected in decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.errors import InvalidArgument, Unavailable
from svc_inference.config import MODELS_DIR, Config
from svc_inference.domain.llamacpp import LlamaCppBackend
from svc_inference.domain.model import GenerateRequest, Sampling
from svc_inference.domain.model_config import load_profile
from svc_inference.domain.plan import make_plan
from svc_inference.domain.sources import SourceSettings, resolve
from svc_inference.domain.stats import GenerationCounters
from svc_inference.domain.structured import LLAMACPP_UNENFORCEABLE

GEMMA = load_profile(MODELS_DIR, "local").llms[0]


class FakeBrokenDecoder(LlamaCppBackend):
    """The real backend, except that prompt evaluation fails while ``broken`` is set."""

    broken = True

    def _prefill(self, tokens: list[int]) -> None:
        if self.broken:
            raise RuntimeError("llama_decode returned -1")
        super()._prefill(tokens)


@pytest.fixture(scope="module")
def backend() -> FakeBrokenDecoder:
    config = Config()
    path = resolve(GEMMA.source, SourceSettings(config.model_root, config.cache_dir))
    return FakeBrokenDecoder(GEMMA, Path(path))


async def _run(backend: LlamaCppBackend, counters: GenerationCounters) -> list[str]:
    plan = make_plan(
        GEMMA,
        GenerateRequest(prompt="The sky is", sampling=Sampling(max_tokens=3, temperature=0.0)),
        unenforceable=LLAMACPP_UNENFORCEABLE,
        backend="llamacpp",
    )
    return [c.delta async for c in backend.stream(plan, counters)]


async def test_backend_failures_are_unavailable_and_fail_the_health_check(backend: FakeBrokenDecoder) -> None:
    counters = GenerationCounters()
    backend.broken = True
    for _ in range(3):
        with pytest.raises(Unavailable) as info:
            await _run(backend, counters)
        assert info.value.reason == "BACKEND_FAILED"
    stats = counters.snapshot()
    assert (stats.started, stats.failed, stats.active) == (3, 3, 0)
    with pytest.raises(RuntimeError, match="3 generations failed in a row"):
        await backend.check_health()
    backend.broken = False
    await _run(backend, counters)
    await backend.check_health()
    assert counters.snapshot().completed == 1


async def test_a_prompt_beyond_the_context_is_refused(backend: FakeBrokenDecoder) -> None:
    backend.broken = False
    plan = make_plan(
        GEMMA,
        GenerateRequest(prompt="word " * (GEMMA.context_length + 10)),
        unenforceable=LLAMACPP_UNENFORCEABLE,
        backend="llamacpp",
    )
    counters = GenerationCounters()
    with pytest.raises(InvalidArgument) as info:
        [c async for c in backend.stream(plan, counters)]
    assert info.value.reason == "PROMPT_TOO_LONG"
    assert info.value.metadata["context_length"] == str(GEMMA.context_length)
    assert counters.snapshot().started == 0
