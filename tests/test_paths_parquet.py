"""``margin_paths.parquet`` written from the arrays equals the reference frame as a reader sees it.

The reference is ``BacktestResult._margin_paths_frames`` (each model's
``MarginPath.long_frame`` with string names, concatenated and made
categorical by pandas; ``margin_paths()`` is now the Arrow table itself) written by pandas:
``pd.read_parquet`` of the new bytes must give an equal frame (values, row
order, dtypes, categories and their order) and ``pyarrow.parquet.read_schema``
an equal schema, metadata included. Written with pyarrow's default options the
table even gives pandas' file byte for byte.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.paths_parquet import margin_paths_parquet, margin_paths_table
from riskmodels.backtest.result import BacktestResult
from riskmodels.margin.base import MarginPath


def _result(paths: list[MarginPath], account_ids: tuple[str, ...]) -> BacktestResult:
    results = {f"r{i}": SimpleNamespace(path=p) for i, p in enumerate(paths)}
    return BacktestResult(panel=None, book=SimpleNamespace(account_ids=account_ids), results=results,
                          config={}, start=0, end=0)


def _path(rng: np.random.Generator, label: str, T: int, ids: tuple[str, ...], share: float,
          start: str = "2021-01-01") -> MarginPath:
    P = len(ids)
    elig = rng.random((T, P)) < share
    im = rng.lognormal(5, 2, (T, P)).astype(np.float32)
    mm = (im * rng.random((T, P))).astype(np.float32)
    im[~elig] = np.nan
    mm[~elig] = np.nan
    return MarginPath(label, pd.date_range(start, periods=T, freq="D"), ids, im, mm, elig, 0)


def _pandas_bytes(res: BacktestResult) -> bytes:
    buf = io.BytesIO()
    res._margin_paths_frames().to_parquet(buf, compression="zstd", index=False)
    return buf.getvalue()


def _check(res: BacktestResult) -> None:
    want = _pandas_bytes(res)
    got = bytes(margin_paths_parquet(res))
    assert pq.read_schema(io.BytesIO(got)).equals(pq.read_schema(io.BytesIO(want)), check_metadata=True)
    g, w = pd.read_parquet(io.BytesIO(got)), pd.read_parquet(io.BytesIO(want))
    pd.testing.assert_frame_equal(g, w, check_exact=True, check_categorical=True)
    assert g["account"].cat.codes.dtype == w["account"].cat.codes.dtype
    # independent of pandas' writer too: the frame built from each path's long_frame (the reference)
    pd.testing.assert_frame_equal(g, res._margin_paths_frames(), check_exact=True, check_categorical=True)
    _check_statistics(got, g)
    table = margin_paths_table(res)
    if table is not None:  # pyarrow's default options: pandas' file, byte for byte
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        assert buf.getvalue() == want


def _check_statistics(data: bytes, frame: pd.DataFrame) -> None:
    """No min / max for ``account`` (every row group spans the accounts); the others' equal the row group's values."""
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    names = [meta.schema.column(j).name for j in range(meta.num_columns)]
    row = 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        part = frame.iloc[row : row + rg.num_rows]
        row += rg.num_rows
        for j, name in enumerate(names):
            st = rg.column(j).statistics
            if name == "account":
                assert st is None or not st.has_min_max
                continue
            assert st is not None and st.has_min_max, name
            col = part[name].astype(str) if name == "model" else part[name]
            if name != "date":
                assert (st.min, st.max) == (col.min(), col.max()), name
    assert row == len(frame)


def test_shared_mask_models_and_duplicate_label():
    rng = np.random.default_rng(1)
    ids = tuple(f"acct{i:03d}" for i in range(40))
    a = _path(rng, "b model", 30, ids, 0.6)
    same = MarginPath("a model", a.dates, ids, a.initial * 2, a.maintenance * 2, a.eligible.copy(), 0)
    dup = MarginPath("b model", a.dates, ids, a.initial + 1, a.maintenance + 1, a.eligible.copy(), 0)
    _check(_result([a, same, dup], ids))


def test_unsorted_ids_unused_accounts_and_an_empty_model():
    rng = np.random.default_rng(2)
    ids = tuple(f"z{i}" for i in rng.permutation(300))  # more than 127 names: int16 codes, names out of order
    p1 = _path(rng, "m1", 12, ids, 0.3)
    p1.eligible[:, :50] = False  # accounts no model prices are not categories
    p2 = _path(rng, "m2", 12, ids, 0.0)  # no priced cell: not a category
    p3 = _path(rng, "m0", 12, ids, 0.9, start="2021-01-05")  # other mask and other dates
    p3.eligible[:, :50] = False
    _check(_result([p1, p2, p3], ids))
    got = pd.read_parquet(io.BytesIO(bytes(margin_paths_parquet(_result([p1, p2, p3], ids)))))
    assert list(got["model"].cat.categories) == ["m0", "m1"]
    assert len(got) == int(p1.eligible.sum() + p3.eligible.sum())  # one row per priced cell, counted apart


def test_same_mask_other_dates_gets_its_own_dates():
    rng = np.random.default_rng(3)
    ids = ("a", "b", "c")
    p1 = _path(rng, "x", 10, ids, 0.7)
    p2 = MarginPath("y", pd.date_range("2022-03-01", periods=10, freq="D"), ids, p1.initial, p1.maintenance,
                    p1.eligible.copy(), 0)
    _check(_result([p1, p2], ids))


def test_frame_fallbacks():
    """Other accounts than the book's, or no priced cell: the frame is written (same reader view)."""
    rng = np.random.default_rng(4)
    ids = ("a", "b", "c")
    p = _path(rng, "x", 8, ids, 0.5)
    other = MarginPath("y", p.dates, ("b", "c", "d"), p.initial, p.maintenance, p.eligible.copy(), 0)
    res = _result([p, other], ids)
    assert margin_paths_table(res) is None
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(bytes(margin_paths_parquet(res)))),
                                  res._margin_paths_frames(), check_categorical=True)
    assert margin_paths_table(_result([_path(rng, "x", 8, ids, 0.0)], ids)) is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 15), st.integers(1, 200))
def test_random_books(seed: int, n_models: int, T: int, P: int):
    rng = np.random.default_rng(seed)
    ids = tuple(f"acc{i}" for i in rng.permutation(P))
    paths = []
    for _ in range(n_models):
        if paths and rng.random() < 0.4:  # a model on the previous one's mask
            q = paths[-1]
            paths.append(MarginPath(f"m{rng.integers(3)}", q.dates, ids, q.initial * 3, q.maintenance,
                                    q.eligible.copy(), 0))
        else:
            paths.append(_path(rng, f"m{rng.integers(3)}", T, ids, float(rng.random())))
    res = _result(paths, ids)
    if sum(int(p.eligible.sum()) for p in paths) == 0:
        assert margin_paths_table(res) is None
        return
    _check(res)


@pytest.mark.parametrize("n", [1, 126, 127, 128, 32766, 32767, 40000])
def test_code_width_as_pandas(n: int):
    from riskmodels.backtest.paths_parquet import _code_dtype

    cat = pd.Categorical.from_codes(np.zeros(1, dtype=np.int64), categories=[f"c{i}" for i in range(n)])
    assert _code_dtype(n) == cat.codes.dtype
