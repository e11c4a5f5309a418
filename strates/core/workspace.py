"""A workspace: a local folder or a `gs://bucket/prefix`, behind one fsspec code path.

Layout: `<workspace>/<stage>/<id>/` holds an artifact's files and `manifest.toml`, written
last. A folder without a manifest is not an artifact (an interrupted publish); `gc` removes
it. `Workspace` knows storage only; what an artifact is lives in `strates.core.artifacts`.

GCS notes (facts checked against fake-gcs-server and gcsfs 2026.10):
- `STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT` points gcsfs at an emulator; we then use
  anonymous credentials. gcsfs probes bucket types over gRPC unless
  `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`, which must be set before gcsfs is imported;
  we set it (if unset) whenever an emulator is configured.
- Object writes are atomic per object, so the manifest (one object) is the commit point.
- gcsfs caches listings; we invalidate before every listing so other processes' writes show.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from strates.core.errors import StorageError

DEFAULT_WORKSPACE = "./chaos-workspace"


def _is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def storage_options(url: str) -> dict:
    """fsspec options for `url`: anonymous access when a GCS emulator is configured."""
    if url.startswith(("gs://", "gcs://")) and os.environ.get("STORAGE_EMULATOR_HOST"):
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        return {"token": "anon"}
    return {}


def open_url(url: str):
    """(filesystem, path) for any local path or remote URL, with `storage_options`."""
    import fsspec

    if not _is_remote(url):
        return fsspec.filesystem("file"), os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
    return fsspec.core.url_to_fs(url, **storage_options(url))


class Workspace:
    """Storage for artifacts at `url` (a local path or `gs://bucket/prefix`).

    Paths given to the methods are relative to the workspace root, with `/` separators.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, **options):
        url = os.fspath(url) if url is not None else os.environ.get("CHAOS_WORKSPACE", DEFAULT_WORKSPACE)
        if not url:
            url = DEFAULT_WORKSPACE
        if not _is_remote(url):
            url = os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
        self.url = url.rstrip("/") or "/"
        self.remote = _is_remote(self.url)
        for key, value in storage_options(self.url).items():
            options.setdefault(key, value)
        try:
            import fsspec

            if self.remote:
                self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
            else:
                self.fs = fsspec.filesystem("file", auto_mkdir=True)
                self.root = self.url
        except (ImportError, ValueError) as e:
            raise StorageError(
                f"cannot open workspace {self.url}: {e}",
                fix="use a local folder or gs://bucket/prefix (gcsfs installed)",
            ) from e
        self.root = self.root.rstrip("/")

    def __repr__(self) -> str:
        return f"Workspace({self.url!r})"

    # -- paths -------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """The filesystem path (no protocol) of `parts` under the root."""
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def uri(self, *parts: str) -> str:
        """The user-facing location of `parts`: `gs://...` or an absolute local path."""
        return "/".join([self.url, *(p.strip("/") for p in parts if p)])

    # -- storage primitives ----------------------------------------------------------------
    def _wrap(self, action: str, rel: str, err: Exception) -> StorageError:
        return StorageError(
            f"cannot {action} {self.uri(rel)}: {type(err).__name__}: {err}",
            fix="check the workspace location, credentials and permissions (--workspace / CHAOS_WORKSPACE)",
        )

    def refresh(self) -> None:
        """Forget cached listings (remote filesystems cache them)."""
        if self.remote:
            self.fs.invalidate_cache()

    def exists(self, rel: str) -> bool:
        try:
            return self.fs.exists(self.path(rel))
        except OSError as e:
            raise self._wrap("check", rel, e) from e

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            raise
        except OSError as e:
            raise self._wrap("read", rel, e) from e

    def read_many(self, rels: Sequence[str]) -> dict[str, bytes]:
        """Read several files at once (concurrently on GCS); missing ones are left out."""
        if not rels:
            return {}
        paths = [self.path(r) for r in rels]
        try:
            got = self.fs.cat(paths, on_error="omit")
        except OSError as e:
            raise self._wrap("read", rels[0], e) from e
        by_path = {self._norm(p): r for p, r in zip(paths, rels, strict=True)}
        return {by_path[self._norm(p)]: v for p, v in got.items() if self._norm(p) in by_path}

    def _norm(self, path: str) -> str:
        return self.fs._strip_protocol(path).rstrip("/")

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one file. On GCS a single object write is atomic; locally it is not (see
        `write_atomic`)."""
        try:
            self.fs.pipe_file(self.path(rel), data)
        except OSError as e:
            raise self._wrap("write", rel, e) from e

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Write one file so readers see either nothing or all of it."""
        if self.remote:
            self.write_bytes(rel, data)
            return
        final = self.path(rel)
        tmp = f"{final}.tmp-{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as e:
            raise self._wrap("write", rel, e) from e

    def local_path(self, rel: str) -> str | None:
        """The OS path of `rel` on a local workspace, else None (for libraries that want one)."""
        return None if self.remote else self.path(rel)

    def location(self, rel: str) -> str:
        """Where a library that opens paths itself (Orbax) finds `rel`: the OS path on a local
        workspace, the `gs://` URI on a remote one."""
        return self.local_path(rel) or self.uri(rel)

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) directly under `rel`; empty when it does not exist."""
        self.refresh()
        base = self._norm(self.path(rel))
        try:
            entries = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._wrap("list", rel, e) from e
        names = []
        for entry in entries:
            entry = self._norm(entry)
            name = entry.rsplit("/", 1)[-1]
            if name and entry != base:
                names.append(name)
        return sorted(set(names))

    def glob(self, pattern: str) -> list[str]:
        """Paths relative to the root matching `pattern` (e.g. `*/*/manifest.toml`)."""
        self.refresh()
        try:
            found = self.fs.glob(self.path(pattern))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._wrap("list", pattern, e) from e
        prefix = self._norm(self.root) + "/"
        return sorted(self._norm(p).removeprefix(prefix) for p in found)

    def find(self, rel: str) -> list[str]:
        """Every file below `rel` (recursively), relative to the root; empty if none."""
        self.refresh()
        try:
            found = self.fs.find(self.path(rel))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._wrap("list", rel, e) from e
        prefix = self._norm(self.root) + "/"
        return sorted(self._norm(p).removeprefix(prefix) for p in found)

    def remove(self, rels: Iterable[str] | str) -> None:
        """Remove files or folders (recursively); missing ones are ignored."""
        items = [rels] if isinstance(rels, str) else list(rels)
        for rel in items:
            try:
                if self.fs.exists(self.path(rel)):
                    self.fs.rm(self.path(rel), recursive=True)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise self._wrap("remove", rel, e) from e
        self.refresh()
