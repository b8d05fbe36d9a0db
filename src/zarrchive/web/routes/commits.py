"""The commit page (a commit and what it changed against its parent) and the diff page
(any two refs)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import InvalidInputError
from .._diff import diff_detail
from . import render, view_of


async def commit_page(request: Request) -> Response:
    view = view_of(request)
    ref = request.path_params["ref"]
    at = await view.at(ref)
    info = await view.commit_info(at.commit)
    detail = None
    if info.parent_id is not None:
        try:
            detail = await diff_detail(view, info.parent_id, at.commit)
        except KeyError:  # the parent was expired: nothing to compare with
            detail = None
    refs = (await view.refs_by_commit()).get(at.commit, [])
    return render(
        request,
        "commit.html",
        at=at,
        info=info,
        detail=detail,
        refs=refs,
        title=f"Commit {at.commit}",
    )


async def diff_page(request: Request) -> Response:
    view = view_of(request)
    a = request.query_params.get("from", "")
    b = request.query_params.get("to", "")
    refs = await view.refs_by_commit()
    names = sorted({name for pointing in refs.values() for _, name in pointing})
    if not a and not b:
        return render(request, "diff.html", detail=None, a=a, b=b, names=names, title="Diff")
    if not a or not b:
        raise InvalidInputError(
            "a diff needs two refs: /diff?from=REF&to=REF (branch, tag or commit id)"
        )
    detail = await diff_detail(view, a, b)
    return render(
        request, "diff.html", detail=detail, a=a, b=b, names=names, title=f"Diff {a}..{b}"
    )


routes = [
    Route("/commit/{ref}", commit_page, name="commit"),
    Route("/diff", diff_page, name="diff"),
]
