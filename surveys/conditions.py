"""Skip-logic conditions (`show_if`): plain data, evaluated without eval."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Operators of a single test on one earlier question, as written in the YAML.
OPERATORS = ("equals", "not_equals", "in", "includes", "answered", "at_least", "at_most")
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True)
class Test:
    """One test on the answer to an earlier question, e.g. `{question: q, equals: ja}`."""

    question: str
    op: str
    # str/int for equals, not_equals, at_least, at_most; tuple for in/includes; bool for answered.
    value: Any


@dataclass(frozen=True)
class AllOf:
    """True when every part is true."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when at least one part is true."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """True when the part is false."""

    item: Condition


Condition = Test | AllOf | AnyOf | Not


def evaluate(condition: Condition, answers: Mapping[str, Any]) -> bool:
    """Whether `condition` holds for the answers given so far (unanswered means no answer)."""
    if isinstance(condition, AllOf):
        return all(evaluate(item, answers) for item in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(item, answers) for item in condition.items)
    if isinstance(condition, Not):
        return not evaluate(condition.item, answers)
    return _test(condition, answers)


def _test(test: Test, answers: Mapping[str, Any]) -> bool:
    has = test.question in answers
    answer = answers.get(test.question)
    op, value = test.op, test.value
    if op == "answered":
        return has == bool(value)
    if op == "equals":
        return has and _same(answer, value)
    if op == "not_equals":
        # The negation of equals: also true when the question was skipped or not shown.
        return not (has and _same(answer, value))
    if op == "in":
        return has and any(_same(answer, item) for item in value)
    if op == "includes":
        return isinstance(answer, list) and any(item in answer for item in value)
    if op in ("at_least", "at_most"):
        if not isinstance(answer, int) or isinstance(answer, bool):
            return False
        return answer >= value if op == "at_least" else answer <= value
    return False


def _same(answer: Any, value: Any) -> bool:
    # bool is an int in Python; a grade of 1 must not equal `true`.
    return type(answer) is type(value) and answer == value


def references(condition: Condition) -> Iterator[Test]:
    """Every single test inside a condition."""
    if isinstance(condition, AllOf | AnyOf):
        for item in condition.items:
            yield from references(item)
    elif isinstance(condition, Not):
        yield from references(condition.item)
    else:
        yield condition


def to_data(condition: Condition) -> dict[str, Any]:
    """The condition as plain JSON data, in the same shape as the YAML."""
    if isinstance(condition, AllOf):
        return {"all": [to_data(item) for item in condition.items]}
    if isinstance(condition, AnyOf):
        return {"any": [to_data(item) for item in condition.items]}
    if isinstance(condition, Not):
        return {"not": to_data(condition.item)}
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    return {"question": condition.question, condition.op: value}


def from_data(data: Any) -> Condition:
    """A condition from plain data (as stored by `to_data`); ValueError when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a condition must be a mapping, not {type(data).__name__}")
    if "all" in data or "any" in data:
        key = "all" if "all" in data else "any"
        items = data[key]
        if not isinstance(items, list) or not items:
            raise ValueError(f"'{key}' needs a non-empty list of conditions")
        parts = tuple(from_data(item) for item in items)
        return AllOf(parts) if key == "all" else AnyOf(parts)
    if "not" in data:
        return Not(from_data(data["not"]))
    ops = [op for op in OPERATORS if op in data]
    if not isinstance(data.get("question"), str) or len(ops) != 1:
        raise ValueError("a condition needs 'question' and exactly one test")
    value = data[ops[0]]
    if ops[0] in ("in", "includes"):
        value = tuple(value) if isinstance(value, list | tuple) else (value,)
    return Test(data["question"], ops[0], value)
