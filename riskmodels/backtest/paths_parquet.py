"""``margin_paths.parquet`` written straight from the margin arrays (no pandas frame in between).

The file holds one row per priced cell ``(t, p)`` of every model's path
(``eligible[t, p]``), model after model in the order of the results, and
within a model in row-major order of the ``(T, P)`` arrays (date, then
account): exactly the rows of :meth:`BacktestResult.margin_paths
<riskmodels.backtest.result.BacktestResult.margin_paths>`. For model ``m``
with mask ``E_m`` the columns are

* ``date``        ``dates_m[t]``, repeated ``sum_p E_m[t, p]`` times per row ``t``;
* ``account``     dictionary code ``c(p)``, the rank of ``account_ids[p]`` among the
  accounts priced by any model (names sorted), index width as pandas picks it
  for that many categories (int8 / int16 / int32);
* ``model``       dictionary code of the model's label among the labels with a
  priced cell (sorted);
* ``initial``, ``maintenance``  ``float32(x_m[t, p])``.

Each column is one Arrow chunk per model, cut out of the path arrays by one
boolean mask (``x[E]``, row-major) and handed to Arrow without a copy; a
model whose mask equals the previous one reuses its ``date`` and ``account``
chunks. The schema (and its ``pandas`` metadata) is what
``DataFrame.to_parquet`` derives from the frame, so ``pd.read_parquet``
gives a frame equal to ``margin_paths()`` with the same dtypes and
categories; ``tests/test_paths_parquet.py`` compares the two. The default
backtest's 18 million rows cost ~3.7 CPU-s through the pandas frame; this
way the file's compression dominates.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

#: columns Parquet dictionary-encodes; the float margins are (almost) all distinct, a dictionary
#: there is built and then dropped for plain encoding at the first page
DICTIONARY_COLUMNS = ("date", "account", "model")
#: columns with min / max statistics per row group. Not ``account``: rows run date by date over
#: the accounts, so every row group spans (nearly) every account and its statistics would skip
#: nothing, while Arrow computes them over the dictionary's strings: 0.4 of the 0.5 CPU-s that
#: column costs in the default backtest's file (18 million rows). ``model`` keeps them (a row
#: group holds one or two models: a filter on the model skips the others)
STATISTICS_COLUMNS = ("date", "model", "initial", "maintenance")


def _code_dtype(n: int) -> np.dtype:
    """The integer width pandas gives the codes of a categorical with ``n`` categories."""
    for dt in (np.int8, np.int16, np.int32):
        if n < np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def margin_paths_table(result: Any) -> Any | None:
    """``result.margin_paths()`` as a :class:`pyarrow.Table` built from the arrays (see the module text).

    Returns None where the frame is needed (results on other accounts than
    the book's, dates that are not a plain ``datetime64`` index, no priced
    cell at all): the caller then writes :meth:`margin_paths` itself.
    """
    import pyarrow as pa

    res = list(result.results.values())
    book_ids = tuple(result.book.account_ids)
    if not res or any(tuple(r.path.account_ids) != book_ids for r in res):
        return None
    date_dtypes = [np.asarray(r.path.dates).dtype for r in res]
    if any(dt.kind != "M" for dt in date_dtypes):
        return None
    date_dtype = np.result_type(*date_dtypes)
    masks = [np.asarray(r.path.eligible, dtype=bool) for r in res]
    n_rows = [int(np.count_nonzero(m)) for m in masks]
    if sum(n_rows) == 0:
        return None
    used = np.zeros(len(book_ids), dtype=bool)
    for m in masks:
        used |= m.any(axis=0)
    names = np.asarray([str(a) for a in book_ids], dtype=object)[used]
    order = np.argsort(names, kind="stable")
    acc_cats = names[order]
    acc_code = np.full(len(book_ids), -1, dtype=_code_dtype(len(acc_cats)))
    acc_code[np.flatnonzero(used)[order]] = np.arange(len(acc_cats))
    labels = [r.path.model for r in res]
    model_cats = sorted({lab for lab, n in zip(labels, n_rows, strict=True) if n})
    model_code = {lab: i for i, lab in enumerate(model_cats)}
    model_dtype = _code_dtype(len(model_cats))

    meta = pa.Schema.from_pandas(_empty_frame(acc_cats, model_cats, date_dtype), preserve_index=False).metadata
    schema = pa.schema([
        ("date", pa.from_numpy_dtype(date_dtype)),
        ("account", pa.dictionary(pa.from_numpy_dtype(acc_code.dtype), pa.large_string())),
        ("model", pa.dictionary(pa.from_numpy_dtype(model_dtype), pa.large_string())),
        ("initial", pa.float32()),
        ("maintenance", pa.float32()),
    ], metadata=meta)
    acc_dict = pa.array(list(acc_cats), type=pa.large_string())
    model_dict = pa.array(model_cats, type=pa.large_string())
    cols: dict[str, list[Any]] = {f: [] for f in schema.names}
    date_type = schema.field("date").type
    prev_mask: np.ndarray | None = None
    prev_dates: np.ndarray | None = None
    date_chunk = acc_chunk = None
    for r, m, n, lab in zip(res, masks, n_rows, labels, strict=True):
        if not n:
            continue
        d = np.asarray(r.path.dates).astype(date_dtype, copy=False)
        same_mask = prev_mask is not None and m.shape == prev_mask.shape and np.array_equal(m, prev_mask)
        if not same_mask:
            acc_chunk = pa.DictionaryArray.from_arrays(pa.array(np.broadcast_to(acc_code, m.shape)[m]), acc_dict)
        if not (same_mask and np.array_equal(d, prev_dates)):
            date_chunk = pa.array(np.repeat(d, m.sum(axis=1)), type=date_type)
        prev_mask, prev_dates = m, d
        cols["date"].append(date_chunk)
        cols["account"].append(acc_chunk)
        cols["model"].append(pa.DictionaryArray.from_arrays(
            pa.array(np.full(n, model_code[lab], dtype=model_dtype)), model_dict))
        for which in ("initial", "maintenance"):
            cols[which].append(pa.array(np.asarray(getattr(r.path, which))[m].astype(np.float32, copy=False)))
    return pa.Table.from_arrays([pa.chunked_array(cols[f], type=schema.field(f).type) for f in schema.names],
                                schema=schema)


def _empty_frame(acc_cats: np.ndarray, model_cats: list[str], date_dtype: np.dtype) -> pd.DataFrame:
    """A 0-row frame with :meth:`margin_paths`' columns, dtypes and categories (for the schema)."""
    def cat(cats: Any) -> pd.Categorical:
        return pd.Categorical.from_codes(np.empty(0, dtype=np.int64), categories=pd.Index(list(cats), dtype="str"))

    return pd.DataFrame({
        "date": pd.DatetimeIndex(np.empty(0, dtype=date_dtype)),
        "account": cat(acc_cats),
        "model": cat(model_cats),
        "initial": np.empty(0, dtype=np.float32),
        "maintenance": np.empty(0, dtype=np.float32),
    })


def margin_paths_parquet(result: Any, compression: str = "zstd") -> memoryview:
    """``margin_paths.parquet`` as bytes: :func:`margin_paths_table` written, or the frame when it returns None."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    table = margin_paths_table(result)
    if table is None:
        result.margin_paths().to_parquet(buf, compression=compression, index=False)
    else:
        pq.write_table(table, buf, compression=compression, use_dictionary=list(DICTIONARY_COLUMNS),
                       write_statistics=list(STATISTICS_COLUMNS))
    return buf.getbuffer()


__all__ = ["margin_paths_parquet", "margin_paths_table"]
