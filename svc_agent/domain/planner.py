"""The planner: answer directly, retrieve, or use a tool.

Rules decide what they can decide for certain (arithmetic, code to run, graph
questions, small talk, plain questions about the documents). The model is
asked, with schema-constrained output, when the rules are not sure, or always
in "model" mode; its plan is used only if it passes the checks here, and the
rules' plan is the backstop otherwise. A tiny model's structured output is
often valid JSON with a wrong action, so each action has a check of its own.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re

from svc_agent.domain.calculator import extract_expression, is_arithmetic
from svc_agent.domain.model import Action, Plan
from svc_agent.domain.text import content_terms, normalize_question, word_set

_CODE_FENCE_RE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(?P<code>.*?)```", re.DOTALL | re.IGNORECASE)
_INLINE_CODE_RE = re.compile(
    r"\b(?:run|execute|evaluate)\b[^`]{0,40}?(?:python|code|this|snippet)?[^`]{0,20}`(?P<code>[^`\n]{1,500})`",
    re.IGNORECASE,
)
_GRAPH_RES = (
    re.compile(
        r"\b(?:what|which)\b(?:\s+\w+){0,2}?\s+(?:is|are)\s+(?:related|connected|linked)\s+to\s+(?P<e>[^?]+)",
        re.IGNORECASE,
    ),
    re.compile(r"^\s*(?:what|which)\s+(?:is|are)\s+(?P<e>[^?]+?)\s+(?:related|connected|linked)\s+to\b", re.IGNORECASE),
    re.compile(
        r"\b(?:neighbou?rs?|neighbou?rhood|relations(?:hips)?|connections|links)\s+(?:of|around|for)\s+(?P<e>[^?]+)",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:explore|show)\s+(?:the\s+)?graph\s+(?:of|for|around|near)\s+(?P<e>[^?]+)", re.IGNORECASE),
)
_SMALL_TALK_RE = re.compile(
    r"^(?:hi|hello|hey|yo|thanks|thank you|thank you very much|thx|good (?:morning|afternoon|evening)|bye|goodbye"
    r"|who are you|what can you do|how are you)(?: there)?$"
)
_QUESTION_OPENERS = word_set(
    """
    what which who whom whose when where why how is are was were can could should does do did will would may
    explain describe list show tell compare summarize summarise define give
    """
)
_ENTITY_TRIM_RE = re.compile(r"^(?:the|a|an)\s+|\s+(?:in the graph|in the knowledge graph)$", re.IGNORECASE)

PLAN_SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": [a.value for a in Action]},
            "input": {"type": "string", "maxLength": 200},
        },
        "required": ["action", "input"],
        "additionalProperties": False,
    }
)

PLAN_PROMPT = """Decide how to handle the message. Actions: "retrieve" looks it up in the documents; \
"calculator" computes arithmetic (input: the expression); "python" runs code (input: the code); \
"graph" lists what an entity is related to (input: the entity); "answer" replies to small talk.

Message: How do I drain a node before maintenance?
Plan: {{"action": "retrieve", "input": ""}}

Message: What is 12 * (3 + 4)?
Plan: {{"action": "calculator", "input": "12 * (3 + 4)"}}

Message: What is kube-proxy connected to?
Plan: {{"action": "graph", "input": "kube-proxy"}}

Message: hello there
Plan: {{"action": "answer", "input": ""}}

Message: {message}
Plan: """


@dataclasses.dataclass(frozen=True)
class RulePlan:
    """The rules' plan and whether they are sure of it."""

    plan: Plan
    certain: bool


def _graph_entity(message: str) -> str | None:
    for pattern in _GRAPH_RES:
        match = pattern.search(message)
        if match:
            entity = _ENTITY_TRIM_RE.sub("", match.group("e").strip(" \"'`.!?")).strip(" \"'`")
            if entity and len(entity) <= 256 and content_terms(entity):
                return entity
    return None


def _code(message: str) -> str | None:
    for pattern in (_CODE_FENCE_RE, _INLINE_CODE_RE):
        match = pattern.search(message)
        if match and match.group("code").strip():
            return match.group("code").strip("\n")
    return None


def is_small_talk(message: str) -> bool:
    """Greetings, thanks and questions about the assistant itself."""
    return bool(_SMALL_TALK_RE.match(normalize_question(message).strip(" ,")))


def rule_plan(message: str) -> RulePlan:
    """The deterministic plan for ``message``."""
    code = _code(message)
    if code is not None:
        return RulePlan(Plan(Action.PYTHON, code, "rules", "the message holds code to run"), True)
    expression = extract_expression(message)
    if expression is not None:
        text, alone = expression
        reason = "the message is arithmetic" if alone else "the message contains arithmetic"
        return RulePlan(Plan(Action.CALCULATOR, text, "rules", reason), alone)
    entity = _graph_entity(message)
    if entity is not None:
        return RulePlan(Plan(Action.GRAPH, entity, "rules", "the message asks what an entity relates to"), True)
    if is_small_talk(message):
        return RulePlan(Plan(Action.ANSWER, "", "rules", "small talk"), True)
    terms = content_terms(message)
    first = normalize_question(message).split(" ", 1)[0] if message.strip() else ""
    questionish = message.rstrip().endswith("?") or first in _QUESTION_OPENERS
    certain = bool(terms) and questionish
    reason = "a question about the documents" if certain else "no tool applies; the documents may know"
    return RulePlan(Plan(Action.RETRIEVE, "", "rules", reason), certain)


def plan_prompt(message: str) -> str:
    """The few-shot prompt whose schema-constrained completion is the model's plan."""
    return PLAN_PROMPT.format(message=" ".join(message.split())[:1000])


def check_model_plan(raw: str, message: str) -> Plan | str:
    """The model's plan if it is usable for ``message``, else why not."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    try:
        action = Action(data.get("action"))
    except ValueError:
        return f"unknown action {data.get('action')!r}"
    tool_input = str(data.get("input") or "").strip()
    if action is Action.RETRIEVE:
        return Plan(Action.RETRIEVE, "", "model", "the model chose to retrieve")
    if action is Action.CALCULATOR:
        if not tool_input or not is_arithmetic(tool_input) or not re.search(r"\d", tool_input):
            return f"calculator input {tool_input!r} is not arithmetic"
        digits_in_message = set(re.findall(r"\d+", message))
        if not set(re.findall(r"\d+", tool_input)) <= digits_in_message | {"100"}:
            return "calculator input has numbers the message does not"
        return Plan(Action.CALCULATOR, tool_input, "model", "the model chose the calculator")
    if action is Action.PYTHON:
        code = _code(message)
        if code is None:
            # Code the user did not write is never run: a small model's code is a guess.
            return "python chosen but the message holds no code"
        try:
            ast.parse(code)
        except SyntaxError:
            return "the message's code does not parse"
        return Plan(Action.PYTHON, code, "model", "the model chose to run the message's code")
    if action is Action.GRAPH:
        if not tool_input or tool_input.casefold() not in message.casefold():
            return f"graph entity {tool_input!r} is not in the message"
        return Plan(Action.GRAPH, tool_input, "model", "the model chose graph exploration")
    if len(content_terms(message)) > 3 and not is_small_talk(message):
        return "answer-directly chosen for a message with content the documents may hold"
    return Plan(Action.ANSWER, "", "model", "the model chose to answer directly")
