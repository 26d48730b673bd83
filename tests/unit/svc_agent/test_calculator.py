"""The calculator tool: safe evaluation and finding the expression in a message."""

from __future__ import annotations

import pytest

from svc_agent.domain.calculator import CalculatorError, evaluate, extract_expression, format_number, is_arithmetic


@pytest.mark.parametrize(
    ("expression", "value"),
    [("17 * 23 + 4", "395"), ("7 / 2", "3.5"), ("2 ** 10", "1024"), ("sqrt(2)", "1.41421356237"), ("(3+4)*5", "35")],
)
def test_evaluate(expression: str, value: str) -> None:
    assert format_number(evaluate(expression)) == value


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("10 / 0", "division by zero"),
        ("9 ** 9 ** 9", "exponent"),
        ("2 ** 5000", "exponent"),
        ("10 ** 400", "300 digits"),
        ('__import__("os").system("id")', "not an arithmetic expression"),
        ('"a" * 10', "not an arithmetic expression"),
        ("(1).real", "not an arithmetic expression"),
        ("1e308 * 10", "not a finite number"),
        ("", "empty"),
        ("1 + " * 100 + "1", "longer than"),
    ],
)
def test_evaluate_refuses(expression: str, error: str) -> None:
    with pytest.raises(CalculatorError, match=error):
        evaluate(expression)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("What is 17 * 23 + 4?", ("17 * 23 + 4", True)),
        ("whats 2^10", ("2 ** 10", True)),
        ("What is 1,000 plus 2,500?", ("1000 + 2500", True)),
        ("What is 7 divided by 2?", ("7 / 2", True)),
        ("what is 2 x 3", ("2 * 3", True)),
        ("What is 10 / 0?", ("10 / 0", True)),
        ("If the limit is 3 * 4 what happens to pods", ("3 * 4", False)),
        ("kubectl scale --replicas=3 deployment", None),
        ("Kubernetes 1.29 release notes", None),
    ],
)
def test_extract_expression(message: str, expected: tuple[str, bool] | None) -> None:
    assert extract_expression(message) == expected


def test_is_arithmetic_rejects_anything_but_numbers_and_known_functions() -> None:
    assert is_arithmetic("sqrt(2) + pi")
    assert not is_arithmetic("x + 1")
    assert not is_arithmetic("abs(x=1)")
    assert not is_arithmetic("True + 1")
