"""Which parts to start, and in which order (pure functions over the dependency graph)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


class DependencyError(ValueError):
    """The selection names an unknown part, or the dependencies form a cycle."""


def with_requirements(selected: Iterable[str], requires: Mapping[str, Sequence[str]]) -> set[str]:
    """``selected`` plus everything it requires, transitively."""
    wanted: set[str] = set()
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name not in requires:
            raise DependencyError(f"unknown part {name!r}; known: {', '.join(requires)}")
        if name in wanted:
            continue
        wanted.add(name)
        stack.extend(requires[name])
    return wanted


def start_order(
    names: Iterable[str],
    requires: Mapping[str, Sequence[str]],
    after: Mapping[str, Sequence[str]],
    declared: Sequence[str],
) -> list[str]:
    """``names`` sorted so that every part comes after what it requires or is ordered after.

    Ties keep the ``declared`` order, so the result is stable. Edges to parts
    outside ``names`` are ignored (they are not being started).
    """
    chosen = set(names)
    unknown = chosen.difference(declared)
    if unknown:
        raise DependencyError(f"unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(declared)}")
    before: dict[str, set[str]] = {
        name: {dep for dep in (*requires.get(name, ()), *after.get(name, ())) if dep in chosen} for name in chosen
    }
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(chosen):
        ready = [name for name in declared if name in chosen and name not in done and before[name] <= done]
        if not ready:
            stuck = sorted(chosen - done)
            raise DependencyError(f"dependency cycle among: {', '.join(stuck)}")
        order.append(ready[0])
        done.add(ready[0])
    return order
