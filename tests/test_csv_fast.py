"""csv_fast against pandas' own ``to_csv`` (the reference: the bytes must be the same)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.csv_fast import csv_text, write_csv

TEXT = st.text(alphabet=st.sampled_from(list("ab ,\"'\n\r;%é-")), max_size=6)
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-300, 123456789.125]))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 25), data=st.data(), fmt=st.sampled_from(["%.10g", "%.6f", "%.3e"]))
def test_same_bytes_as_pandas(n: int, data: st.DataObject, fmt: str):
    df = pd.DataFrame({
        "date": pd.to_datetime("2020-01-01") + pd.to_timedelta(data.draw(st.lists(st.integers(0, 3000), min_size=n,
                                                                                   max_size=n)), unit="D"),
        "account": data.draw(st.lists(TEXT, min_size=n, max_size=n)),
        "t": np.asarray(data.draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)), dtype=np.int64),
        "flag": np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
        "equity": np.asarray(data.draw(st.lists(FLOAT, min_size=n, max_size=n)), dtype=np.float64),
        "f32": np.asarray(data.draw(st.lists(st.floats(width=32), min_size=n, max_size=n)), dtype=np.float32),
        "a,b \"c\"": np.arange(n, dtype=np.int32),
    })
    assert csv_text(df, fmt) == df.to_csv(index=False, float_format=fmt)


def test_columns_it_does_not_format_go_to_pandas(tmp_path):
    df = pd.DataFrame({"ts": pd.to_datetime(["2020-01-01 12:30", None]), "c": pd.Categorical(["x", "y"]),
                       "o": [1, "a"], "f": [0.1, np.nan]})
    for cols in (["ts"], ["c"], ["o"], ["f", "ts"]):
        assert csv_text(df[cols]) == df[cols].to_csv(index=False, float_format="%.10g")
    write_csv(df, tmp_path / "x.csv")
    df.to_csv(tmp_path / "y.csv", index=False, float_format="%.10g")
    assert (tmp_path / "x.csv").read_bytes() == (tmp_path / "y.csv").read_bytes()


SAFE_TEXT = st.text(alphabet=st.sampled_from(list("ab ;%é-'\t")), max_size=6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 25), data=st.data(), k=st.integers(1, 3))
def test_unquoted_rows_joined_same_bytes_as_pandas(n: int, data: st.DataObject, k: int):
    """Tables with no cell to quote (the joining shortcut), also one column and empty strings."""
    cols = {f"s{j}": data.draw(st.lists(SAFE_TEXT, min_size=n, max_size=n)) for j in range(k)}
    cols["x"] = np.asarray(data.draw(st.lists(FLOAT, min_size=n, max_size=n)), dtype=np.float64)
    df = pd.DataFrame(cols)
    for sub in (df, df[["s0"]], df[["x"]], df[["x", "s0"]]):
        assert csv_text(sub) == sub.to_csv(index=False, float_format="%.10g")
    # one cell that needs quotes anywhere sends the table through the csv writer
    quoted = df.copy()
    quoted.loc[n - 1, "s0"] = data.draw(st.sampled_from(["a,b", 'say "x"', "line\nbreak", "cr\r"]))
    assert csv_text(quoted) == quoted.to_csv(index=False, float_format="%.10g")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), data=st.data(), fmt=st.sampled_from(["%.10g", "%.6f", "%+.3e"]))
def test_mostly_zero_float_columns_same_bytes_as_pandas(n: int, data: st.DataObject, fmt: str):
    """Columns of mostly +0.0 (one shared string), with -0.0, NaN and other values among them."""
    mostly_zero = st.one_of(st.just(0.0), st.just(0.0), st.just(0.0), st.just(-0.0), st.just(float("nan")), FLOAT)
    df = pd.DataFrame({
        "bad_debt": np.asarray(data.draw(st.lists(mostly_zero, min_size=n, max_size=n)), dtype=np.float64),
        "f32": np.asarray(data.draw(st.lists(st.one_of(st.just(0.0), st.just(-0.0), st.floats(width=32)), min_size=n,
                                             max_size=n)), dtype=np.float32),
        "all_zero": np.zeros(n),
    })
    assert csv_text(df, fmt) == df.to_csv(index=False, float_format=fmt)
