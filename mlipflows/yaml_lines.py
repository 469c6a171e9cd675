"""YAML loading that remembers the line of every key and list item, for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml

M = TypeVar("M")


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


def validate_yaml(model: type[M], path: str | Path, error: type[Exception], **extra: Any) -> M:
    """``model`` validated from the YAML file ``path``; every problem raised as one ``error``
    of ``file:line: field: message`` lines, a misspelt key with the nearest valid names."""
    from difflib import get_close_matches

    from pydantic import BaseModel, ValidationError

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data, lines = load_with_lines(text)
    except yaml.YAMLError as exc:  # its message carries the line and column
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise error(f"{path}:1: expected a mapping of settings (key: value lines)")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc, msg = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":  # a key the model lacks: the nearest real ones
                owner: Any = model
                for part in loc[:-1]:
                    field = owner.model_fields.get(part) if isinstance(part, str) else None
                    sub = model_in(field.annotation) if field is not None else None
                    owner = sub or owner
                names = (
                    list(owner.model_fields)
                    if isinstance(owner, type) and issubclass(owner, BaseModel)
                    else []
                )
                near = get_close_matches(str(loc[-1]), names, n=2)
                msg = "not a setting here" + (f"; did you mean {' or '.join(near)}?" if near else "")
            where = ".".join(str(p) for p in loc) or "(top level)"
            messages.append(f"{path}:{line_of(lines, loc)}: {where}: {msg}")
        raise error("\n".join(messages)) from None


def model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X | None`` / ``list[X]`` annotations, if any."""
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None
