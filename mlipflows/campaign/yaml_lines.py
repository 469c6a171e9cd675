"""YAML loading that remembers the line of every key and list item, for error messages."""

from __future__ import annotations

from typing import Any

import yaml


def load_with_lines(text: str) -> tuple[Any, dict[tuple, int]]:
    """Parse ``text``; return the data and {path: 1-based line} for every node.

    A path is the tuple of mapping keys and list indices leading to the node, the same shape
    as pydantic's error ``loc``.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = yaml.safe_load(yaml.serialize(key)) if not isinstance(key, yaml.ScalarNode) else key.value
                lines[(*path, k)] = key.start_mark.line + 1
                walk(value, (*path, k))
                lines[(*path, k)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return yaml.safe_load(text), lines


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """Line of the deepest known prefix of ``loc`` (pydantic adds union/model tags we skip)."""
    path = tuple(p for p in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())
