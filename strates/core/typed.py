"""The base of every strate's typed artifact: a manifest with its config, summary and
metrics read into the strate's own frozen dataclasses.

A strate declares `class Jepa(Typed[Config, Summary, Metrics])` with `KIND` (its artifact
folder) and `COMMAND` (the CLI command that makes it), and gets `Jepa.read(manifest)`,
`Jepa.load(ws, ref)` and `Jepa.of(jepa_or_manifest)`. A manifest of another schema is
refused with the fix (`artifacts.current`); a key the dataclasses do not know, or one they
need and the manifest lacks, is an error, never a silent default. Strates whose config is
not a dataclass (the tokens' fold, the dataset's sources) declare `dict`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Self

from strates.core import artifacts
from strates.core.config import from_dict
from strates.core.workspace import Workspace

if TYPE_CHECKING:
    from strates.data.split import Period


@dataclasses.dataclass(frozen=True)
class Typed[C, S, M]:
    """`manifest`, its resolved `config` (`C`), typed `summary` (`S`) and `metrics` (`M`)."""

    KIND: ClassVar[str]
    COMMAND: ClassVar[str]

    manifest: artifacts.Manifest
    config: C
    summary: S
    metrics: M

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def ref(self) -> str:
        return self.manifest.ref

    @classmethod
    def _types(cls) -> tuple[Any, Any, Any]:
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is Typed:
                return typing.get_args(base)
        raise TypeError(f"{cls.__name__} must subclass Typed[Config, Summary, Metrics]")

    @classmethod
    def read(cls, manifest: artifacts.Manifest) -> Self:
        """The typed view of a manifest of the current schema."""
        m = artifacts.current(manifest, command=cls.COMMAND)
        config, summary, metrics = cls._types()

        def typed(kind: Any, data: dict) -> Any:
            return dict(data) if kind is dict else from_dict(kind, data)

        return cls(m, typed(config, m.config), typed(summary, m.summary), typed(metrics, m.metrics))

    @classmethod
    def load(cls, ws: Workspace, ref: str = "latest") -> Self:
        """The artifact `ref` names (`latest`, an id or prefix, `KIND/ID`), typed."""
        return cls.read(artifacts.resolve(ws, ref, stage=cls.KIND))

    @classmethod
    def of(cls, value: Self | artifacts.Manifest) -> Self:
        """`value` typed (a manifest is read; a typed artifact is returned as is)."""
        return value if isinstance(value, cls) else cls.read(typing.cast(artifacts.Manifest, value))

    def span(self, name: str = "train", *, use: str = "fitted") -> Period:
        """The `fitted` (or `selected`) range called `name` as a `Period`."""
        from strates.data.split import Period

        return Period(**getattr(self.manifest, use)[name])

    @property
    def fitted(self) -> Period:
        """The training period a model stage was fitted on (its `fitted["train"]`)."""
        return self.span("train")
