"""Repository configuration: written once when a repository is created."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ._envelope import FORMAT_VERSION, ObjectType, decode, encode

__all__ = ["RepositoryConfig"]


@dataclass(frozen=True, slots=True)
class RepositoryConfig:
    """Settings that every writer of a repository must agree on.

    ``inline_threshold``: native chunks up to this many bytes are kept inside the manifest
    instead of as separate objects. ``manifest_split_size``: the most chunk references one
    manifest holds; larger arrays get one manifest per region of their chunk grid.
    ``virtual_containers``: URL prefixes of virtual-chunk sources with their per-prefix,
    credential-free options. ``chunkstore``: where native chunk bytes go, if not beside the
    metadata.
    """

    inline_threshold: int = 512
    manifest_split_size: int = 1 << 17
    virtual_containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunkstore: str | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not 0 <= self.inline_threshold <= 1 << 20:
            raise InvalidInputError(
                f"inline_threshold must be between 0 and 1 MiB, got {self.inline_threshold}"
            )
        if self.manifest_split_size < 1:
            raise InvalidInputError(
                f"manifest_split_size must be positive, got {self.manifest_split_size}"
            )

    def to_bytes(self) -> bytes:
        return encode(ObjectType.CONFIG, asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> RepositoryConfig:
        body = decode(ObjectType.CONFIG, data, what="'config'")
        known = {k: v for k, v in body.items() if k in cls.__dataclass_fields__}
        return cls(**known)
