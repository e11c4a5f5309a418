"""Orbax checkpoints: one folder per artifact, one sub-folder per saved step, two items each.

Layout of a checkpoint folder (a local path or a `gs://bucket/prefix`):

    <directory>/
      <step>/                    a finished step (at most `max_to_keep` of them)
        params/                  the model parameters: all a later stage needs to load
        train/                   the rest of the train state: {"opt_state", "step"}
        _CHECKPOINT_METADATA
      <step>.orbax-checkpoint-tmp-*/   a save in progress (local); ignored, cleaned by Orbax

`step` is the number of optimizer steps done when it was saved. A stage that only needs the
final weights restores the `params` item alone (`restore_params`), without building an
optimizer. Orbax owns the folder: never copy a step in by hand (on GCS a step without
Orbax's commit marker is treated as unfinished and deleted).

GCS, checked against fake-gcs-server (orbax-checkpoint 0.12.8, tensorstore 0.1.86): Orbax
lists, finalises and deletes steps through etils/gcsfs, which follows
`STORAGE_EMULATOR_HOST`, but writes array data through tensorstore, which ignores it and
follows `TENSORSTORE_GCS_HTTP_URL` (without it, a save against an emulator goes to
storage.googleapis.com and hangs retrying where there is no network). `open_manager` sets
the latter from the former (unless already set), so both talk to the same server.
tensorstore still logs one "Could not find the credentials file" line; it is harmless.

Arrays are restored with the shardings of the abstract tree given (`jax.ShapeDtypeStruct`
with a concrete `.sharding`, or live arrays); leaves without one come back as they were saved.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from strates.core.errors import ArtifactNotFound
from strates.core.workspace import storage_options

PARAMS = "params"
TRAIN = "train"
ITEMS = (PARAMS, TRAIN)


def _location(directory: str | os.PathLike[str]) -> str:
    """An absolute local path or a remote URL; points tensorstore at a GCS emulator if set."""
    directory = os.fspath(directory)
    if directory.startswith(("gs://", "gcs://")):
        storage_options(directory)  # sets gcsfs's emulator switches before gcsfs is imported
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            if "://" not in emulator:
                emulator = f"http://{emulator}"
            os.environ.setdefault("TENSORSTORE_GCS_HTTP_URL", emulator)
        return directory.rstrip("/")
    return os.path.abspath(os.path.expanduser(directory.removeprefix("file://")))


def open_manager(
    directory: str | os.PathLike[str], *, max_to_keep: int | None = None, create: bool = True
) -> ocp.CheckpointManager:
    """A `CheckpointManager` for `directory` with the items `params` and `train`.

    Saves are asynchronous: call `wait_until_finished()` (or `close()`) before the process
    ends. `max_to_keep=None` keeps every step. With `create=False` nothing is written unless
    you save (readers use it rather than Orbax's `read_only`, which only adds log noise).
    """
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create)
    return ocp.CheckpointManager(_location(directory), item_names=ITEMS, options=options)


def latest_step(directory: str | os.PathLike[str]) -> int | None:
    """The newest finished step in `directory`, or None when it holds none (or is absent)."""
    with open_manager(directory, create=False) as manager:
        return manager.latest_step()


def all_steps(directory: str | os.PathLike[str]) -> list[int]:
    """Every finished step in `directory`, ascending."""
    with open_manager(directory, create=False) as manager:
        return sorted(manager.all_steps())


def save(manager: ocp.CheckpointManager, step: int, *, params: Any, train: Any = None) -> None:
    """Start saving `params` (and, when given, the `train` pytree) as `step`; asynchronous."""
    items = {PARAMS: ocp.args.StandardSave(params)}
    if train is not None:
        items[TRAIN] = ocp.args.StandardSave(train)
    manager.save(step, args=ocp.args.Composite(**items))


def restore(
    manager: ocp.CheckpointManager, step: int, *, abstract_params: Any, abstract_train: Any = None
) -> tuple[Any, Any]:
    """`(params, train)` of `step`; `train` is None when `abstract_train` is None."""
    items = {PARAMS: ocp.args.StandardRestore(_abstract(abstract_params))}
    if abstract_train is not None:
        items[TRAIN] = ocp.args.StandardRestore(_abstract(abstract_train))
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored[PARAMS], (restored[TRAIN] if abstract_train is not None else None)


def restore_params(
    directory: str | os.PathLike[str], abstract_params: Any, *, step: int | None = None
) -> Any:
    """The `params` item of `step` (default: the latest) in `directory`; no optimizer needed.

    `abstract_params` gives the tree structure, shapes, dtypes and shardings: e.g.
    `jax.eval_shape` of the initialiser, or freshly initialised params.
    """
    with open_manager(directory, create=False) as manager:
        if step is None:
            step = manager.latest_step()
        if step is None or step not in manager.all_steps():
            found = sorted(manager.all_steps())
            raise ArtifactNotFound(
                f"no checkpoint {'step ' + str(step) + ' ' if step is not None else ''}"
                f"in {manager.directory} (steps present: {found or 'none'})",
                fix="train the stage first, or pass a step that exists",
            )
        params, _ = restore(manager, step, abstract_params=abstract_params)
        return params


def save_params(directory: str | os.PathLike[str], params: Any, *, step: int = 0) -> None:
    """Write `params` alone as `step` of a checkpoint folder, and wait until it is finished.

    For a stage's final weights; `restore_params(directory, ...)` reads them back.
    """
    with open_manager(directory) as manager:
        save(manager, step, params=params)
        manager.wait_until_finished()


def _abstract(tree: Any) -> Any:
    """Live arrays become `ShapeDtypeStruct`s carrying their sharding; others pass through."""

    def one(x):
        if isinstance(x, jax.Array):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
        return x

    return jax.tree.map(one, tree)
