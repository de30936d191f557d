"""Walking a parsed PromQL expression: which series it selects, inside which functions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import promql_parser as promql


def walk(node: Any, inside: tuple[str, ...] = ()) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Every node of a parsed expression with the names of the functions around it."""
    yield node, inside
    if isinstance(node, promql.Call):
        for arg in node.args:
            yield from walk(arg, (*inside, node.func.name))
    elif isinstance(node, promql.BinaryExpr):
        yield from walk(node.lhs, inside)
        yield from walk(node.rhs, inside)
    elif isinstance(node, promql.AggregateExpr):
        yield from walk(node.expr, inside)
        if node.param is not None:
            yield from walk(node.param, inside)
    elif isinstance(node, (promql.ParenExpr, promql.SubqueryExpr, promql.UnaryExpr)):
        yield from walk(node.expr, inside)
    elif isinstance(node, promql.MatrixSelector):
        yield from walk(node.vector_selector, inside)


def selectors(expr: str) -> Iterator[tuple[promql.VectorSelector, tuple[str, ...]]]:
    """Every vector selector of ``expr`` with the functions it is an argument of."""
    for node, inside in walk(promql.parse(expr)):
        if isinstance(node, promql.VectorSelector):
            yield node, inside
