"""The commit graph of every branch and tag, newest first, paged, drawn as an SVG.

A zarrchive commit has one parent, so the history of all refs is a tree. It is walked newest
first from every tip at once (a heap on commit time), so page ``n`` costs the first
``(n + 1) * per_page`` commits, not the whole history. Each ref gets a lane (main first, then
the other branches by name, then tags); a commit is drawn in the lane of the first ref that
reaches it. :func:`draw` turns a page into SVG text: commits as dots, branches as lanes,
branch and tag names as labels; pure, no I/O. Must not import starlette or jinja2.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

from ..errors import NotFoundError
from ..history import CommitInfo
from ._view import RepoView

__all__ = ["GraphRow", "HistoryPage", "draw", "history"]

ROW_HEIGHT = 34
_LANE_WIDTH = 18
_PALETTE = ("#2f6fbf", "#c2571a", "#2f9a5b", "#8a4fbf", "#b8941c", "#1f9aa6", "#c23b6b")
# walking on past the page to settle the lanes of its rows' parents stops after this many
_SETTLE = 1000


@dataclass(frozen=True, slots=True)
class GraphRow:
    commit: CommitInfo
    lane: int
    parent_lane: int | None  # None: the first commit, or history expired before it
    parent_row: int | None  # row of the parent on this page, None when below it
    incoming: tuple[int, ...]  # lanes of children drawn on earlier pages
    refs: tuple[tuple[str, str], ...]  # ("branch" | "tag", name) pointing at this commit


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[GraphRow]
    lanes: list[str]  # the ref each lane belongs to
    page: int
    per_page: int
    has_more: bool
    svg: str = field(default="", repr=False)


async def history(
    view: RepoView, page: int = 0, per_page: int = 50, *, href: Callable[[str], str]
) -> HistoryPage:
    """Page ``page`` of the commit graph; ``href(commit_id)`` links a dot to its commit."""
    repo = await view.repo()
    branches = await repo.get_branches()
    tags = await repo.get_tags()
    order = sorted(branches, key=lambda b: (b != "main", b))
    tips: list[tuple[str, str]] = [(b, branches[b]) for b in order]
    tips += [(t, c) for t, c in tags.items()]
    refs_at: dict[str, list[tuple[str, str]]] = {}
    for name in order:
        refs_at.setdefault(branches[name], []).append(("branch", name))
    for name, commit in tags.items():
        refs_at.setdefault(commit, []).append(("tag", name))

    lane_of: dict[str, int] = {}
    heap: list[tuple[float, str]] = []
    infos: dict[str, CommitInfo] = {}

    async def push(commit: str, lane: int) -> None:
        lane_of[commit] = min(lane, lane_of.get(commit, lane))
        if commit in infos:
            return
        try:
            info = await view.commit_info(commit)
        except NotFoundError:  # expired: history ends here
            return
        infos[commit] = info
        heapq.heappush(heap, (-info.time.timestamp(), commit))

    for lane, (_name, commit) in enumerate(tips):
        await push(commit, lane)

    start, stop = page * per_page, (page + 1) * per_page
    popped: list[str] = []
    incoming: dict[str, set[int]] = {}
    while heap and len(popped) < stop:
        _, commit = heapq.heappop(heap)
        popped.append(commit)
        parent = infos[commit].parent_id
        if parent is not None:
            if len(popped) <= start:
                incoming.setdefault(parent, set()).add(lane_of[commit])
            await push(parent, lane_of[commit])
    shown = popped[start:stop]
    # a parent's lane is final once all its children are popped: walk on a little for that
    wanted = {infos[c].parent_id for c in shown} - set(popped) - {None}
    extra = 0
    while heap and wanted and extra < _SETTLE:
        _, commit = heapq.heappop(heap)
        wanted.discard(commit)
        parent = infos[commit].parent_id
        if parent is not None:
            await push(parent, lane_of[commit])
        extra += 1
    has_more = bool(heap) or extra > 0

    row_of = {c: i for i, c in enumerate(shown)}
    used = sorted({lane_of[c] for c in shown} | {lane_of[p] for p in wanted if p in lane_of})
    rows: list[GraphRow] = []
    for c in shown:
        parent = infos[c].parent_id
        rows.append(
            GraphRow(
                commit=infos[c],
                lane=lane_of[c],
                parent_lane=lane_of.get(parent) if parent is not None else None,
                parent_row=row_of.get(parent) if parent is not None else None,
                incoming=tuple(sorted(incoming.get(c, ()))),
                refs=tuple(refs_at.get(c, ())),
            )
        )
    names = [name for name, _ in tips]
    lanes = [names[i] for i in used]
    return HistoryPage(rows, lanes, page, per_page, has_more, draw(rows, used, href))


def _label_width(text: str) -> int:
    return 7 * len(text) + 12


def draw(rows: list[GraphRow], lanes: list[int], href: Callable[[str], str]) -> str:
    """SVG of a page of the graph; ``lanes`` are the lane numbers in use, left to right."""
    column = {lane: i for i, lane in enumerate(lanes)}
    height = max(len(rows), 1) * ROW_HEIGHT
    graph_width = 14 + _LANE_WIDTH * max(len(lanes), 1)
    label_width = max(
        (sum(_label_width(n) + 4 for _, n in r.refs) for r in rows if r.refs), default=0
    )
    width = graph_width + label_width + 8

    def x(lane: int) -> float:
        return 12 + _LANE_WIDTH * column.get(lane, 0)

    def y(row: int) -> float:
        return row * ROW_HEIGHT + ROW_HEIGHT / 2

    def colour(lane: int) -> str:
        return _PALETTE[lane % len(_PALETTE)]

    edges: list[str] = []
    dots: list[str] = []
    labels: list[str] = []
    for i, r in enumerate(rows):
        for lane in r.incoming:  # a child on an earlier page
            edges.append(_line(x(lane), 0, x(r.lane), y(i), colour(lane)))
        if r.parent_lane is not None:
            if r.parent_row is None:  # the parent is on a later page
                edges.append(_line(x(r.lane), y(i), x(r.parent_lane), height, colour(r.lane)))
            else:
                edges.append(
                    _line(x(r.lane), y(i), x(r.parent_lane), y(r.parent_row), colour(r.lane))
                )
        title = escape(f"{r.commit.id}  {r.commit.message}")
        tip = " tip" if r.refs else ""
        dots.append(
            f'<a href="{escape(href(r.commit.id))}"><circle class="dot{tip}" cx="{x(r.lane)}" '
            f'cy="{y(i)}" r="5" fill="{colour(r.lane)}"><title>{title}</title></circle></a>'
        )
        lx = graph_width
        for kind, name in r.refs:
            w = _label_width(name)
            labels.append(
                f'<g class="label {kind}"><rect x="{lx}" y="{y(i) - 9}" width="{w}" height="18" '
                f'rx="{9 if kind == "branch" else 3}"/><text x="{lx + 6}" y="{y(i) + 4}">'
                f"{escape(name)}</text></g>"
            )
            lx += w + 4
    return (
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="commit graph">' + "".join(edges + dots + labels) + "</svg>"
    )


def _line(x0: float, y0: float, x1: float, y1: float, colour: str) -> str:
    if x0 == x1:
        d = f"M{x0} {y0} L{x1} {y1}"
    else:  # run down the child's lane, then bend into the parent's
        bend = max(y0, y1 - ROW_HEIGHT)
        d = f"M{x0} {y0} L{x0} {bend} C{x0} {y1 - ROW_HEIGHT / 3} {x1} {bend} {x1} {y1}"
    return f'<path d="{d}" stroke="{colour}" stroke-width="2" fill="none"/>'
