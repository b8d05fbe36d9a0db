"""Readable views of a session's hierarchy: ``tree`` (rich) and ``filter_metadata`` (JMESPath).

Pure functions over a node mapping (path -> Node); no I/O. JMESPath expressions are evaluated
against each node's attributes, as in Arraylake (``"units == 'K'"``, ``"contains(tags, 'era5')"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError, JMESPathTypeError
from rich.tree import Tree

from .errors import InvalidInputError
from .format import Node
from .format.snapshot import parent_path

__all__ = ["filter_paths", "render_tree"]


def _compile(expression: str) -> Any:
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise InvalidInputError(f"invalid JMESPath expression {expression!r}: {exc}") from exc


def filter_paths(nodes: Mapping[str, Node], expression: str) -> list[str]:
    """Paths of nodes whose attributes make ``expression`` truthy, sorted."""
    compiled = _compile(expression)

    def matches(attrs: Mapping[str, Any]) -> bool:
        try:
            return bool(compiled.search(dict(attrs)))
        except JMESPathTypeError:
            # e.g. contains(tags, 'x') on a node without `tags`: that node does not match
            return False

    return sorted(p for p, n in nodes.items() if matches(n.attributes))


def _label(node: Node) -> str:
    name = node.name or "/"
    if node.kind == "group":
        return f"[bold]{name}[/bold]"
    meta = node.meta
    chunks = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape")
    dtype = meta.get("data_type")
    dtype = (
        dtype if isinstance(dtype, str) else dtype.get("name") if isinstance(dtype, dict) else dtype
    )
    dims = meta.get("dimension_names")
    dims_txt = f" ({', '.join(str(d) for d in dims)})" if dims else ""
    return f"{name}{dims_txt} {dtype} {tuple(meta.get('shape', ()))} chunks={tuple(chunks or ())}"


def render_tree(
    nodes: Mapping[str, Node], prefix: str = "", *, depth: int = 10, filter: str | None = None
) -> Tree:
    """A rich ``Tree`` of the hierarchy below ``prefix`` (``filter``: JMESPath on attributes;
    ancestors of matching nodes are kept so the matches stay in context)."""
    prefix = prefix.strip("/")
    if prefix not in nodes:
        raise InvalidInputError(f"no group or array at {prefix or '/'!r}")
    keep: set[str] | None = None
    if filter is not None:
        keep = set()
        for p in filter_paths(nodes, filter):
            q: str | None = p
            while q is not None and q not in keep:
                keep.add(q)
                q = parent_path(q)
    children: dict[str, list[str]] = {}
    for p in nodes:
        parent = parent_path(p)
        if parent is not None and p != "":
            children.setdefault(parent, []).append(p)
    root = Tree(_label(nodes[prefix]))

    def add(branch: Tree, path: str, level: int) -> None:
        if level >= depth:
            return
        for child in sorted(children.get(path, [])):
            if keep is not None and child not in keep:
                continue
            add(branch.add(_label(nodes[child])), child, level + 1)

    add(root, prefix, 0)
    return root
