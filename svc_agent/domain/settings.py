"""The answer loop's tuning, as plain values (svc_agent.config nests it and fills it from the environment)."""

from __future__ import annotations

import dataclasses
import enum

from svc_agent.domain.evidence import Thresholds
from svc_agent.domain.stitch import StitchParams


class PlannerMode(enum.Enum):
    """When the planner asks the model."""

    RULES = "rules"
    """Never: the rules decide everything."""
    AUTO = "auto"
    """Only when the rules are not sure (not a tool, not plainly a question)."""
    MODEL = "model"
    """Always; the rules are the backstop for unusable output."""


class AnswerMode(enum.Enum):
    """How the responder writes an answer from the evidence."""

    STITCH = "stitch"
    """Quote and stitch: the sources' own sentences that answer the question, each cited; no generation.
    For models that cannot be trusted to write a grounded answer (the local 270M one)."""
    GENERATE = "generate"
    """The model writes the answer from the numbered sources (the GPU profile's large model)."""


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """How the loop plans, searches, answers and caches."""

    default_top_k: int = 4
    """Sources retrieved and shown to the model when the request does not say."""
    max_prompt_sources: int = 8
    """Most sources put in the responder prompt, whatever the request asks."""
    source_chars: int = 600
    """Characters of each source in the responder prompt."""
    history_messages: int = 6
    """Messages of the session the rewrite step reads."""
    answer_mode: AnswerMode = AnswerMode.STITCH
    """Stitch the sources' sentences or generate; the local default is stitch, chosen with ``ragmesh eval answers``."""
    stitch: StitchParams = dataclasses.field(default_factory=StitchParams)
    """How stitch mode picks sentences and when it declines."""
    answer_max_tokens: int = 160
    """Most tokens of an answer."""
    temperature: float = 0.0
    """Sampling temperature of the responder (0 is greedy)."""
    repeat_penalty: float = 1.3
    """Repeat penalty for every generation; small models loop without one."""
    planner_mode: PlannerMode = PlannerMode.AUTO
    """When the planner asks the model."""
    planner_max_tokens: int = 64
    """Most tokens of the model's plan."""
    rewrite_with_model: bool = True
    """Whether follow-ups that need resolving are also rewritten by the model (checked before use)."""
    rewrite_max_tokens: int = 48
    """Most tokens of the model's rewrite."""
    hyde_max_tokens: int = 96
    """Most tokens of a HyDE passage."""
    thresholds: Thresholds = dataclasses.field(
        default_factory=lambda: Thresholds(min_relevance=0.3, strong_relevance=0.5, min_coverage=0.6)
    )
    """Evidence levels: decline below, corrective search between, answer above."""
    corrective_max_attempts: int = 2
    """Most extra searches when the evidence is weak."""
    attribution_min_similarity: float = 0.4
    """Least similarity of an answer sentence to a source for post-hoc attribution to cite it."""
    attribution_standing_weight: float = 1.0
    """Weight of a source's standing in retrieval's order beside its similarity to the sentence, in attribution."""
    attribution_standing_decay: float = 0.5
    """How fast standing falls with rank in attribution: the i-th source (from 0) stands at 1 / (1 + decay * i)."""
    attribution_min_own_similarity: float = 0.25
    """Least similarity of an answer sentence to some source before attribution credits it at all."""
    attribution_lexical_weight: float = 0.5
    """Weight of the share of a sentence's own words and numbers a source contains, in attribution."""
    attribution_tie_band: float = 0.05
    """Sources whose support of a sentence is within this of the best one's are credited too."""
    attribution_short_claim_words: int = 8
    """Answer sentences shorter than this are embedded together with the question for attribution."""
    max_term_lookups: int = 4
    """Most specific terms looked up in the corpus when the sources do not mention them."""
    attribution_source_chars: int = 1500
    """Characters of each source embedded for attribution."""
    semantic_cache_min_similarity: float = 0.92
    """Least similarity of two questions for the semantic cache to answer."""
    graph_depth: int = 1
    """Hops of graph exploration."""
    graph_max_nodes: int = 25
    """Most nodes a graph exploration returns."""
    tool_output_chars: int = 2000
    """Characters of a tool's output kept in the answer."""
    replay_words_per_delta: int = 6
    """Words per token event when a cached answer is replayed."""
