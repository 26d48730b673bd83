"""The calculator tool: arithmetic from a message, evaluated safely with simpleeval.

simpleeval walks the expression's AST with a whitelist of operators, functions
and names, so nothing but arithmetic can run. Powers and results are bounded
here more tightly than simpleeval's defaults, so "9 ** 9 ** 9" is refused
instead of pinning a core.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import simpleeval

from svc_agent.domain.text import shorten, word_set

MAX_EXPRESSION_CHARS = 200
_MAX_EXPONENT = 1000
_MAX_MAGNITUDE = 1e300

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
}
_NAMES = {"pi": math.pi, "e": math.e}


class CalculatorError(ValueError):
    """The expression is not arithmetic the calculator accepts, or has no finite value."""


def _bounded_power(base: Any, exponent: Any) -> Any:
    if abs(exponent) > _MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is larger than {_MAX_EXPONENT}")
    if abs(base) > 1 and abs(exponent) * math.log10(abs(base)) > 300:
        raise CalculatorError("the result would have more than 300 digits")
    return operator.pow(base, exponent)


_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _bounded_power,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; CalculatorError when it is not one or has no finite value."""
    text = expression.strip()
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    if not is_arithmetic(text):
        # Only numbers, operators and the whitelisted functions: no attributes, strings or comparisons.
        raise CalculatorError(f"not an arithmetic expression: {shorten(text, 60)!r}")
    evaluator = simpleeval.SimpleEval(operators=_OPERATORS, functions=_FUNCTIONS, names=_NAMES)
    try:
        value = evaluator.eval(text)
    except ZeroDivisionError as exc:
        raise CalculatorError("division by zero") from exc
    except CalculatorError:
        raise
    except (simpleeval.InvalidExpression, SyntaxError, TypeError, ValueError, OverflowError) as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc}") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculatorError("the expression does not evaluate to a number")
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value) or abs(value) > _MAX_MAGNITUDE):
        raise CalculatorError("the result is not a finite number")
    if isinstance(value, int) and value.bit_length() > 1000:
        raise CalculatorError("the result has more than 300 digits")
    return value


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Call, ast.Name, ast.Load, *_OPERATORS)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_arithmetic(expression: str) -> bool:
    """Whether ``expression`` parses as arithmetic over numbers, the known functions and names.

    It may still fail to evaluate (division by zero, too large): that is the
    calculator's answer to give, not a reason to pick another tool.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            return False
        if isinstance(node, ast.Constant) and not _is_number(node.value):
            return False
        if isinstance(node, ast.Name) and node.id not in _FUNCTIONS and node.id not in _NAMES:
            return False
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords):
            return False
    return True


def format_number(value: int | float) -> str:
    """A number as people write it: integers exactly, other values to 12 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


_WORD_OPERATORS: tuple[tuple[str, str], ...] = (
    (r"\bto the power of\b", " ** "),
    (r"\braised to\b", " ** "),
    (r"\bmultiplied by\b", " * "),
    (r"\bdivided by\b", " / "),
    (r"\btimes\b", " * "),
    (r"\bplus\b", " + "),
    (r"\bminus\b", " - "),
    (r"\bmodulo\b|\bmod\b", " % "),
    (r"\bsquared\b", " ** 2 "),
    (r"\bcubed\b", " ** 3 "),
    (r"\b(?:the\s+)?square root of\s+(\d+(?:\.\d+)?)", r" sqrt(\1) "),
    (r"(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\s+", r" \1 / 100 * "),
    (r"(?<=\d)\s*[x\u00d7]\s*(?=\d)", " * "),
    ("\u00f7", " / "),
    (r"\^", " ** "),
    (r"(?<=\d),(?=\d{3}\b)", ""),
)
_FUNCTION_NAMES = "|".join(sorted(_FUNCTIONS, key=len, reverse=True))
_CANDIDATE_RE = re.compile(rf"(?:{_FUNCTION_NAMES}|pi|\d|[\s.+\-*/%()])+")
_OPERATOR_RE = re.compile(rf"\d\s*(?:\*\*|[+\-*/%])\s*[\d(]|(?:{_FUNCTION_NAMES})\s*\(")
_FILLER = word_set(
    """
    what whats what's is are was the result value answer of equals equal to calculate compute evaluate work out
    solve how much please can you could tell me give i need know it do get a number for
    """
)


def extract_expression(message: str) -> tuple[str, bool] | None:
    """The arithmetic expression in ``message`` and whether the message is nothing but that expression.

    Number words ("plus", "divided by", "15% of") become operators first. The
    second value is True when every other word is filler ("what is",
    "calculate", ...), so the calculator is the certain choice.
    """
    text = message.casefold()
    for pattern, replacement in _WORD_OPERATORS:
        text = re.sub(pattern, replacement, text)
    best = ""
    for match in _CANDIDATE_RE.finditer(text):
        candidate = " ".join(match.group(0).split()).strip(" .")
        if len(candidate) > len(best) and _OPERATOR_RE.search(candidate):
            best = candidate
    if not best or not is_arithmetic(best):
        return None
    rest = text.replace(best, " ", 1)
    leftover = [w for w in re.findall(r"[a-z']+", rest) if w not in _FILLER]
    return best, not leftover
