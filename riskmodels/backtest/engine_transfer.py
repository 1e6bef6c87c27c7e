"""A model's result on its way back from a worker process: spill files, account ranges merged.

:func:`_spill` (in the worker) writes the large ``(T, P)`` arrays of a
:class:`~riskmodels.backtest.result.ModelResult` to ``.npy`` files and
:func:`_unspill` / :func:`_merge` (in the parent) read them back into place,
joining the account ranges of a split model (:func:`riskmodels.backtest.engine.account_splits`).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from typing import Any

import numpy as np

from riskmodels.backtest.result import ModelResult
from riskmodels.portfolio import Book

#: the (T, P) arrays of a ModelResult: (attribute of the result, attribute of that object)
_LARGE = (
    ("path", "initial"), ("path", "maintenance"), ("path", "eligible"),
    ("isolated_path", "initial"), ("isolated_path", "maintenance"), ("isolated_path", "eligible"),
    ("coverage", "valid"), ("coverage", "exceptions"),
    ("simulation", "is_open"), ("simulation", "equity"), ("simulation", "maintenance"),
)


class _Spilled(str):
    """Marker for an array that was written to this ``.npy`` file."""


def _spill(result: ModelResult, directory: str) -> ModelResult:
    """Write the result's large arrays to ``directory`` and drop them (and the shared loss) from it.

    A worker's result travels to the parent as one pickle: the parent holds
    the received bytes and the unpickled arrays at once, and the worker its
    arrays and the bytes (measured at 10,000 accounts: ~1.6 GB per model,
    twice). Through ``.npy`` files each array exists once per process, and
    the parent reads it straight into place.
    """
    tag = uuid.uuid4().hex
    for owner_name, attr in _LARGE:
        owner = getattr(result, owner_name)
        if owner is None:
            continue
        file = os.path.join(directory, f"{tag}-{owner_name}-{attr}.npy")
        np.save(file, getattr(owner, attr), allow_pickle=False)
        object.__setattr__(owner, attr, _Spilled(file))
    object.__setattr__(result.coverage, "margin", None)  # the path's array: re-linked by _unspill
    object.__setattr__(result.coverage, "loss", None)  # the same for every model: the parent has it
    return result


#: spill files are mapped (copy-on-write) instead of read where a mapped file can be deleted
MAP_SPILLS = os.name == "posix"


def _load(x: Any) -> np.ndarray:
    """The array of a spill file (the file is deleted), or ``x`` itself as an array.

    On POSIX the file is mapped copy-on-write (``mmap_mode="c"``) and
    unlinked at once: its pages, just written by the worker, are still in the
    page cache, so the parent maps them instead of copying ~0.5 GB (the
    default backtest: 1.1 s of CPU in ``np.fromfile``); the mapping outlives
    the name, and the array is an ordinary writable ``ndarray`` whose written
    pages become private. Elsewhere (Windows cannot delete a mapped file) it
    is read into memory.
    """
    if isinstance(x, _Spilled):
        if MAP_SPILLS:
            arr = np.asarray(np.load(x, mmap_mode="c", allow_pickle=False))
        else:
            arr = np.load(x, allow_pickle=False)
        os.remove(x)
        return arr
    return np.asarray(x)


def _merge(parts: list[ModelResult], splits: list[slice], book: Book, loss: np.ndarray) -> ModelResult:
    """One model's result from the results of its account ranges (arrays read from the spill files).

    Columns go back to their accounts, event and opening account indices are
    shifted by the range start and re-sorted by (date, account) as one run
    orders them; timings add up (CPU seconds), warnings are kept once.
    """
    if len(parts) == 1:
        return _unspill(parts[0], loss)
    P = book.n_accounts

    def gather(owner: str, attr: str) -> np.ndarray:
        out: np.ndarray | None = None
        for part, sl in zip(parts, splits, strict=True):
            a = _load(getattr(getattr(part, owner), attr))
            if out is None:
                out = np.empty((a.shape[0], P), dtype=a.dtype)
            out[:, sl] = a
        assert out is not None
        return out

    def shifted(field: str) -> np.ndarray:
        recs = []
        for part, sl in zip(parts, splits, strict=True):
            r = getattr(part.simulation, field).copy()
            r["account"] += sl.start
            recs.append(r)
        r = np.concatenate(recs)
        return r[np.lexsort((r["account"], r["t"]))]

    first = parts[0]
    ids = book.account_ids
    path = replace(first.path, account_ids=ids, initial=gather("path", "initial"),
                   maintenance=gather("path", "maintenance"), eligible=gather("path", "eligible"))
    iso = None
    if first.isolated_path is not None:
        iso = replace(first.isolated_path, account_ids=ids, initial=gather("isolated_path", "initial"),
                      maintenance=gather("isolated_path", "maintenance"), eligible=gather("isolated_path", "eligible"))
    cov = replace(first.coverage, loss=loss, margin=getattr(path, first.coverage.on), valid=gather("coverage", "valid"),
                  exceptions=gather("coverage", "exceptions"), side=np.concatenate([p.coverage.side for p in parts]))
    sim = replace(first.simulation, account_ids=ids, events=shifted("events"), openings=shifted("openings"),
                  is_open=gather("simulation", "is_open"), equity=gather("simulation", "equity"),
                  maintenance=gather("simulation", "maintenance"),
                  notional_total=np.sum([p.simulation.notional_total for p in parts], axis=0))
    timings: dict[str, float] = {}
    for p in parts:
        for k, v in p.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    seen = list(dict.fromkeys(w for p in parts for w in p.warnings))
    return ModelResult(first.model, path, cov, sim, book.gross_notional, timings, iso, seen, first.fit_log)


def _share(result: ModelResult, ok: np.ndarray) -> ModelResult:
    """Point the result's copy of the window's eligibility mask (the same for every model) at one object."""
    if np.array_equal(result.path.eligible, ok):
        object.__setattr__(result.path, "eligible", ok)
    return result


def _unspill(result: ModelResult, loss: np.ndarray) -> ModelResult:
    """Read the arrays :func:`_spill` wrote (deleting the files) and re-link the shared ones."""
    for owner_name, attr in _LARGE:
        owner = getattr(result, owner_name)
        if owner is not None:
            object.__setattr__(owner, attr, _load(getattr(owner, attr)))
    cov = result.coverage
    object.__setattr__(cov, "margin", getattr(result.path, cov.on))
    object.__setattr__(cov, "loss", loss)
    return result
