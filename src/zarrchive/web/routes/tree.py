"""The tree page: the groups and arrays below a path at a ref, with shape, dtype, chunking,
codecs, dimension names and attributes, and the JMESPath filter of ``filter_metadata`` as a
search box (matches are shown with their ancestors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...display import filter_paths
from ...errors import NotFoundError
from ...format import Node
from ...format.snapshot import parent_path
from .._arrays import ArrayInfo, array_info
from . import render, view_of

_MAX_NODES = 5000


@dataclass(slots=True)
class Item:
    path: str
    name: str
    kind: str
    info: ArrayInfo | None
    attributes: dict[str, Any]
    matched: bool
    children: list[Item] = field(default_factory=list)


def build(nodes: dict[str, Node], prefix: str, matches: set[str] | None) -> tuple[Item, int, bool]:
    """The tree below ``prefix`` (only matches and their ancestors when filtering)."""
    keep: set[str] | None = None
    if matches is not None:
        keep = set()
        for p in matches:
            q: str | None = p
            while q is not None and q not in keep:
                keep.add(q)
                q = parent_path(q)
    items: dict[str, Item] = {}

    def item(path: str) -> Item:
        node = nodes[path]
        return Item(
            path=path,
            name=node.name or "/",
            kind=node.kind,
            info=array_info(node) if node.kind == "array" else None,
            attributes=dict(node.attributes),
            matched=matches is not None and path in matches,
        )

    root = items[prefix] = item(prefix)
    below = [
        p
        for p in sorted(nodes)
        if p != prefix
        and (not prefix or p.startswith(prefix + "/"))
        and (keep is None or p in keep)
    ]
    cut = len(below) > _MAX_NODES
    for p in below[:_MAX_NODES]:
        parent = parent_path(p)
        if parent is None or parent not in items:
            continue
        items[p] = item(p)
        items[parent].children.append(items[p])
    for it in items.values():
        it.children.sort(key=lambda c: (c.kind != "group", c.name))
    return root, len(below), cut


async def tree_page(request: Request) -> Response:
    view = view_of(request)
    ref = request.path_params["ref"]
    prefix = request.path_params.get("path", "").strip("/")
    at = await view.at(ref)
    nodes = dict(at.session.nodes)
    if prefix not in nodes:
        raise NotFoundError(f"/{prefix} at {ref} ({at.commit}): no such group or array")
    if nodes[prefix].kind == "array":
        from starlette.responses import RedirectResponse

        from . import Links

        return RedirectResponse(Links(request.scope.get("root_path", "")).array(ref, prefix))
    expression = request.query_params.get("filter", "").strip()
    matches = set(filter_paths(nodes, expression)) if expression else None
    root, count, cut = build(nodes, prefix, matches)
    return render(
        request,
        "tree.html",
        at=at,
        root=root,
        prefix=prefix,
        expression=expression,
        matches=sorted(matches) if matches is not None else None,
        count=count,
        cut=cut,
        max_nodes=_MAX_NODES,
        title=f"/{prefix} at {ref}",
    )


routes = [
    Route("/ref/{ref}/tree", tree_page, name="tree"),
    Route("/ref/{ref}/tree/{path:path}", tree_page, name="tree_at"),
]
