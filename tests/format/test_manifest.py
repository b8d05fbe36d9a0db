"""Columnar manifests: building, merging, lookup, splitting, encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zarrchive.errors import FormatError, InvalidInputError
from zarrchive.format import (
    DELETED,
    INLINE,
    NATIVE,
    VIRTUAL,
    Manifest,
    region_of,
    split_shape,
)
from zarrchive.format._envelope import FORMAT_VERSION, ObjectType, encode


def grid(shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape), axis=1)


def virtual(shape=(30, 40), urls=("file:///a", "file:///b"), seed=0) -> Manifest:
    rng = np.random.default_rng(seed)
    coords = grid(shape)
    n = len(coords)
    lengths = rng.integers(1000, 5000, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    idx = rng.integers(0, len(urls), n)
    return Manifest.virtual(coords, idx, offsets, lengths, list(urls), ["size=1", None])


def rows(m: Manifest) -> dict[tuple[int, ...], tuple]:
    tables = {VIRTUAL: m.urls, NATIVE: m.chunk_ids, INLINE: m.inline}
    out = {}
    for i in range(len(m)):
        k, loc = int(m.kind[i]), int(m.loc[i])
        target = tables[k][loc] if k in tables else None
        out[tuple(int(c) for c in m.coords[i])] = (k, target, int(m.offset[i]), int(m.length[i]))
    return out


def test_round_trip_is_exact_and_small() -> None:
    m = virtual((100, 100))
    data = m.to_bytes()
    back = Manifest.from_bytes(data)
    assert rows(back) == rows(m)
    assert back.checksums == m.checksums
    # delta + shuffle + zstd: well under 7 bytes per reference for contiguous ranges
    assert len(data) / len(m) < 4


def test_find_hits_and_misses() -> None:
    m = virtual((30, 40)).sorted()
    assert m.find((29, 39)) >= 0
    assert m.find((30, 0)) == -1
    assert m.find((0, 40)) == -1  # would alias (1, 0) with a naive linear key
    assert m.find((0,)) == -1
    assert m.find((-1, 0)) == -1
    i = m.find((3, 7))
    assert tuple(m.coords[i]) == (3, 7)


def test_merge_last_wins_and_tombstones() -> None:
    base = virtual((4, 4))
    native = Manifest.single((1, 1), NATIVE, chunk_id="c1", length=10)
    inline = Manifest.single((2, 2), INLINE, data=b"abc")
    gone = Manifest.single((0, 0), DELETED)
    merged = Manifest.merge([base, native, inline, gone], 2)
    r = rows(merged)
    assert (0, 0) not in r
    assert r[(1, 1)] == (NATIVE, "c1", 0, 10)
    assert r[(2, 2)] == (INLINE, b"abc", 0, 3)
    assert len(merged) == 15
    assert merged.chunk_ids == ["c1"] and merged.inline == [b"abc"]
    kept = Manifest.merge([native, gone], 2, keep_deleted=True)
    assert rows(kept)[(0, 0)][0] == DELETED


def test_merge_remaps_url_tables() -> None:
    a = Manifest.virtual(np.array([[0], [1]]), [0, 1], [0, 10], [10, 10], ["u0", "u1"])
    b = Manifest.virtual(np.array([[1], [2]]), [0, 0], [5, 6], [1, 1], ["u1"], ["new"])
    m = Manifest.merge([a, b], 1)
    assert rows(m) == {
        (0,): (VIRTUAL, "u0", 0, 10),
        (1,): (VIRTUAL, "u1", 5, 1),
        (2,): (VIRTUAL, "u1", 6, 1),
    }
    assert dict(zip(m.urls, m.checksums, strict=True))["u1"] == "new"


def test_scalar_array_manifest() -> None:
    m = Manifest.single((), INLINE, data=b"x")
    back = Manifest.from_bytes(m.to_bytes())
    assert back.find(()) == 0 and back.inline == [b"x"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 20),
            st.integers(0, 20),
            st.sampled_from([0, 1, 2, 3]),
            st.integers(0, 2**40),
            st.integers(0, 2**31),
        ),
        max_size=60,
    ),
    st.integers(1, 4),
)
def test_merge_matches_dict_model(entries, nparts) -> None:
    """Merging parts in order equals applying the writes to a dict."""
    model: dict[tuple[int, int], tuple] = {}
    parts = []
    chunk = max(1, len(entries) // nparts)
    for start in range(0, len(entries), chunk):
        part = entries[start : start + chunk]
        ms = []
        for y, x, kind, off, length in part:
            if kind == VIRTUAL:
                ms.append(
                    Manifest.single((y, x), VIRTUAL, url=f"u{off % 3}", offset=off, length=length)
                )
                model[(y, x)] = (VIRTUAL, f"u{off % 3}", off, length)
            elif kind == NATIVE:
                ms.append(Manifest.single((y, x), NATIVE, chunk_id=f"id{off}", length=length))
                model[(y, x)] = (NATIVE, f"id{off}", 0, length)
            elif kind == INLINE:
                data = str(off).encode()
                ms.append(Manifest.single((y, x), INLINE, data=data))
                model[(y, x)] = (INLINE, data, 0, len(data))
            else:
                ms.append(Manifest.single((y, x), DELETED))
                model.pop((y, x), None)
        parts.append(Manifest.merge(ms, 2, keep_deleted=True))
    merged = Manifest.merge(parts, 2)
    assert rows(merged) == model
    assert rows(Manifest.from_bytes(merged.to_bytes())) == model


def test_split_shape_and_regions() -> None:
    assert split_shape((1000, 1000), 1 << 17) == (131, 1000)
    assert split_shape((10, 10), 1 << 17) == (10, 10)
    assert split_shape((5, 1_000_000), 1000) == (1, 1000)
    assert split_shape((), 10) == ()
    r = region_of(np.array([[130, 5], [131, 999]]), (131, 1000))
    assert r.tolist() == [[0, 0], [1, 0]]


def test_invalid_inputs() -> None:
    with pytest.raises(InvalidInputError):
        Manifest.virtual(np.array([[0]]), [1], [0], [1], ["only-one"])
    with pytest.raises(InvalidInputError):
        Manifest.virtual(np.array([[0]]), [0], [-1], [1], ["u"])
    with pytest.raises(InvalidInputError):
        Manifest.merge([Manifest.single((0,), DELETED)], 2)


def test_corrupt_and_future_objects_raise_format_error() -> None:
    data = virtual((5, 5)).to_bytes()
    with pytest.raises(FormatError, match="truncated"):
        Manifest.from_bytes(data[:5])
    with pytest.raises(FormatError, match="corrupt"):
        Manifest.from_bytes(data[:-10])
    with pytest.raises(FormatError, match="magic"):
        Manifest.from_bytes(b"XXXX" + data[4:])
    future = bytearray(data)
    future[5:7] = (FORMAT_VERSION + 1).to_bytes(2, "little")
    with pytest.raises(FormatError, match="newer"):
        Manifest.from_bytes(bytes(future))
    with pytest.raises(FormatError, match="expected a manifest"):
        Manifest.from_bytes(encode(ObjectType.SNAPSHOT, {}))
    bad_table = encode(
        ObjectType.MANIFEST,
        {
            "n": 1,
            "ndim": 0,
            "coords": b"",
            "kind": b"\x01",
            "loc": b"\x05\x00\x00\x00",
            "offset": b"\x00" * 8,
            "length": b"\x00" * 8,
            "urls": [],
            "checksums": [],
            "chunk_ids": [],
            "inline": [],
        },
    )
    with pytest.raises(FormatError, match="past its table"):
        Manifest.from_bytes(bad_table)
