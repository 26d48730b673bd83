"""The rule planner, and the checks that decide whether the model's plan is usable."""

from __future__ import annotations

import json

import pytest

from svc_agent.domain.model import Action, Plan
from svc_agent.domain.planner import PLAN_SCHEMA, check_model_plan, plan_prompt, rule_plan


@pytest.mark.parametrize(
    ("message", "action", "tool_input", "certain"),
    [
        ("What is 17 * 23 + 4?", Action.CALCULATOR, "17 * 23 + 4", True),
        ("calculate 15% of 80", Action.CALCULATOR, "15 / 100 * 80", True),
        ("What is the square root of 144?", Action.CALCULATOR, "sqrt(144)", True),
        ("What is kube-proxy related to?", Action.GRAPH, "kube-proxy", True),
        ("Which entities are connected to the kubelet?", Action.GRAPH, "kubelet", True),
        ("Run this: `print(2 ** 10)`", Action.PYTHON, "print(2 ** 10)", True),
        ("please run\n```python\nprint(sum(range(10)))\n```", Action.PYTHON, "print(sum(range(10)))", True),
        ("hello", Action.ANSWER, "", True),
        ("Thanks!", Action.ANSWER, "", True),
        ("How often does the kubelet clean up unused images?", Action.RETRIEVE, "", True),
        ("kubelet image garbage collection", Action.RETRIEVE, "", False),
        ("kubectl scale --replicas=3 deployment web", Action.RETRIEVE, "", False),
    ],
)
def test_rule_plan(message: str, action: Action, tool_input: str, certain: bool) -> None:
    ruled = rule_plan(message)
    assert (ruled.plan.action, ruled.plan.tool_input, ruled.certain) == (action, tool_input, certain)
    assert ruled.plan.decided_by == "rules"


def test_plan_schema_allows_exactly_the_actions() -> None:
    schema = json.loads(PLAN_SCHEMA)
    assert set(schema["properties"]["action"]["enum"]) == {a.value for a in Action}
    assert schema["required"] == ["action", "input"]


def test_plan_prompt_ends_with_the_message() -> None:
    assert plan_prompt("  What   is  a Pod? ").endswith("Message: What is a Pod?\nPlan: ")


@pytest.mark.parametrize(
    ("raw", "message", "expected"),
    [
        ('{"action": "retrieve", "input": ""}', "pods", Plan(Action.RETRIEVE, "", "model", "")),
        ('{"action": "calculator", "input": "6 * 7"}', "6 boxes of 7", Plan(Action.CALCULATOR, "6 * 7", "model", "")),
        ('{"action": "graph", "input": "etcd"}', "things near etcd", Plan(Action.GRAPH, "etcd", "model", "")),
        ('{"action": "answer", "input": ""}', "you rock", Plan(Action.ANSWER, "", "model", "")),
    ],
)
def test_usable_model_plans(raw: str, message: str, expected: Plan) -> None:
    plan = check_model_plan(raw, message)
    assert isinstance(plan, Plan)
    assert (plan.action, plan.tool_input, plan.decided_by) == (expected.action, expected.tool_input, "model")


@pytest.mark.parametrize(
    ("raw", "message", "why"),
    [
        ("not json", "pods", "not JSON"),
        ("[1]", "pods", "not a JSON object"),
        ('{"action": "dance", "input": ""}', "pods", "unknown action"),
        ('{"action": "calculator", "input": "2 + 2"}', "what is a pod", "numbers the message does not"),
        ('{"action": "calculator", "input": "open the pod"}', "what is a pod", "not arithmetic"),
        ('{"action": "python", "input": "print(1)"}', "what is a pod", "holds no code"),
        ('{"action": "graph", "input": "etcd"}', "what is a pod", "not in the message"),
        ('{"action": "answer", "input": ""}', "explain pod disruption budgets and node drains", "content"),
    ],
)
def test_unusable_model_plans_say_why(raw: str, message: str, why: str) -> None:
    result = check_model_plan(raw, message)
    assert isinstance(result, str) and why in result
