"""Streamed runs (issue 23 item 3): the summary of a chunked run equals the dense run's.

The oracle is the dense engine (:func:`riskmodels.backtest.engine.run_models`),
an independent code path that holds every (date, account) array at once;
the streamed run adds per-chunk sums. Counts, events, verdicts and top-N
shares must be identical, float sums equal to rounding (1e-12 relative).
The 95th percentile is checked against ``numpy.percentile`` itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk_panel
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest import stream, stream_runners
from riskmodels.backtest import stream_aggregate as sa
from riskmodels.backtest.engine import run_models
from riskmodels.backtest.report_tables import (
    comparison_summary,
    coverage_table,
    procyclicality_table,
)
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.backtest.stream_result import STREAMED_METRICS
from riskmodels.backtest.topn import top_concentration
from riskmodels.errors import UserError
from riskmodels.margin import get
from riskmodels.portfolio import generate_book


def _models():
    return [
        get("fixed_haircut", label="haircut", imf=0.05, mmf=0.03),
        get("fixed_haircut", label="tiered", position_tiers={"default": [[0, 0.05, 0.03], [60_000, 0.1, 0.05]]}),
        get("historical_var", label="HS", window=60, min_history=60),
        get("scenario_grid", label="SPAN", psr_lookback=60, psr_min_obs=20, recalibration="monthly"),
        get("ewma", label="EWMA"),
    ]


@pytest.fixture(scope="module")
def setup():
    panel = random_walk_panel(T=520, A=4, seed=3, vol=0.04)
    book = generate_book(panel.assets, 230, seed=11, collateral_assets=("A0", "A1"))
    kw = {"mpor": 2, "min_history": 100, "start": 150, "policy": LiquidationPolicy()}
    dense = run_models(panel, book, _models(), netting=False, **kw)
    return panel, book, kw, dense


def _stream(setup, **extra):
    panel, book, kw, _ = setup
    return stream.stream_models(panel, book, _models(), **kw, **extra)


def _same_events(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b) > 0
    for c in ("date", "account", "trigger", "model"):
        assert a[c].equals(b[c]), c
    num = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[num].to_numpy(), b[num].to_numpy(), rtol=1e-9, atol=1e-9)


def _same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    num = a.select_dtypes("number").columns
    pd.testing.assert_frame_equal(a[num], b[num], rtol=1e-12, atol=1e-15)
    other = [c for c in a.columns if c not in num]
    assert a[other].astype(str).equals(b[other].astype(str))


def test_every_registered_metric_has_a_streamed_form():
    from riskmodels.backtest.metrics import METRICS

    assert set(STREAMED_METRICS) == set(METRICS)


def test_chunked_summary_equals_the_dense_run(setup, monkeypatch):
    monkeypatch.setattr(stream, "PILOT_ACCOUNTS", 40)  # the band comes from a pilot smaller than the book
    _panel, _book, _kw, dense = setup
    st_ = _stream(setup, chunk_accounts=47)  # 230 = 4 x 47 + 42: an uneven last chunk
    assert st_.run["chunks"] == 5
    a, b = dense.metrics_frame(), st_.metrics_frame()
    pd.testing.assert_frame_equal(a, b, rtol=1e-12, atol=0)
    # counts and the percentile are exact
    for col in ("p95_im_per_notional", "breach_rate", "breach_rate_long", "breach_rate_short",
                "share_ever_liquidated", "liquidations_per_account_year", "top10_margin_share"):
        assert (a[col].to_numpy() == b[col].to_numpy()).all() or np.isnan(a[col]).all(), col
    assert {k: v.to_dict() for k, v in dense.verdicts().items()} == {k: v.to_dict() for k, v in st_.verdicts().items()}
    _same_frames(procyclicality_table(dense).to_frame(), st_.procyclicality_table().to_frame())
    assert top_concentration(dense).equals(st_.top_concentration())
    _same_events(dense.events(), st_.events())
    cmp_dense = comparison_summary(dense, coverage_table(dense), procyclicality_table(dense)).to_frame()
    _same_frames(cmp_dense, st_.comparison().to_frame())
    fa, fb = dense.window_facts(), st_.window_facts()
    for k in ("first_priced_date", "last_priced_date", "accounts", "accounts_ever_priced", "account_days_eligible",
              "priced_account_days", "common_cells", "unpriced"):
        assert fa[k] == fb[k], k
    for name, w in fa["stress_windows"].items():
        other = fb["stress_windows"][name]
        assert {k: v for k, v in w.items() if "share" not in k} == {k: v for k, v in other.items() if "share" not in k}
        assert [w["account_share"], w["notional_share"]] == pytest.approx(
            [other["account_share"], other["notional_share"]], rel=1e-12)
    pd.testing.assert_frame_equal(dense.margin_over_time(), st_.margin_over_time(), rtol=1e-12)


def test_percentile_second_pass_when_the_band_misses(setup, monkeypatch):
    monkeypatch.setattr(stream, "_bands_from_pilot", lambda pilot: dict.fromkeys(pilot.models, (1, 0)))
    _, _, _, dense = setup
    st_ = _stream(setup, chunk_accounts=100)
    assert sorted(st_.run["percentile_second_pass"]) == sorted(dense.models)
    a, b = dense.metrics_frame()["p95_im_per_notional"], st_.metrics_frame()["p95_im_per_notional"]
    assert (a.to_numpy() == b.to_numpy()).all()


def test_pilot_parts_cover_the_pilot_and_respect_the_smallest_part(monkeypatch):
    monkeypatch.setattr(stream, "PILOT_ACCOUNTS", 1000)
    monkeypatch.setattr(stream, "PILOT_PART", 250)
    assert stream.pilot_ranges(4000, 1) == [(0, 1000)]
    assert stream.pilot_ranges(4000, 2) == [(0, 500), (500, 1000)]
    assert stream.pilot_ranges(4000, 8) == [(0, 250), (250, 500), (500, 750), (750, 1000)]  # parts >= 250
    assert stream.pilot_ranges(300, 2) == [(0, 300)]  # 150-account parts would be under the floor
    assert stream.pilot_ranges(600, 2) == [(0, 300), (300, 600)]


def test_pilot_split_between_workers_gives_the_whole_pilots_bands(setup, monkeypatch):
    """The bands of the pilot priced in parts equal those of one call on the whole pilot block."""
    panel, book, kw, _ = setup
    monkeypatch.setattr(stream, "PILOT_ACCOUNTS", 120)
    monkeypatch.setattr(stream, "PILOT_PART", 30)
    seen = []
    real = stream._bands_from_pilot

    def spy(pilot):
        seen.append(real(pilot))
        return seen[-1]

    monkeypatch.setattr(stream, "_bands_from_pilot", spy)
    monkeypatch.setattr(stream, "pilot_ranges", lambda P, w: [(0, 31), (31, 77), (77, 120)])  # uneven parts
    _stream(setup, chunk_accounts=100)
    models = _models()
    fitted, _, _ = stream.fit_models(models, panel, kw["policy"])
    end = panel.n_dates - 1
    ctx = stream.StreamContext(panel, book.align(panel.assets), [m.label for m in models], fitted,
                               panel.eligible(max(kw["min_history"], *(m.min_history for m in models))),
                               kw["mpor"], "initial", kw["policy"], kw["start"], end)
    whole = stream._empty(ctx.labels, end - kw["start"] + 1).add(stream.chunk_aggregate(ctx, 0, 120, None, True))
    assert seen == [real(whole)]


def test_one_chunk_and_many_chunks_agree_bit_for_bit(setup):
    one = _stream(setup, chunk_accounts=10_000).metrics_frame()
    many = _stream(setup, chunk_accounts=23).metrics_frame()
    # counts, events and the percentile do not depend on the chunking at all
    cols = ["p95_im_per_notional", "breach_rate", "share_ever_liquidated", "liquidations_per_account_year",
            "top10_margin_share", "top10_liquidated_share"]
    assert one[cols].equals(many[cols])


def test_local_processes_give_identical_numbers(setup):
    serial = _stream(setup, chunk_accounts=60)
    procs = _stream(setup, chunk_accounts=60, n_jobs=2)
    assert procs.run["backend"].startswith("processes")
    assert serial.metrics_frame().equals(procs.metrics_frame())
    assert serial.events().equals(procs.events())
    assert serial.procyclicality_table().to_frame().equals(procs.procyclicality_table().to_frame())


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_numbers(setup):
    pytest.importorskip("distributed")
    serial = _stream(setup, chunk_accounts=60)
    dask = _stream(setup, chunk_accounts=60, workers=2)
    assert dask.run["backend"].startswith("dask") and dask.run["workers"] == 2
    assert serial.metrics_frame().equals(dask.metrics_frame())
    assert serial.events().equals(dask.events())
    assert {k: v.to_dict() for k, v in serial.verdicts().items()} == {k: v.to_dict() for k, v in dask.verdicts().items()}


def test_no_look_ahead_in_the_streamed_aggregates(setup):
    panel, book, kw, _ = setup
    t = 330
    rng = np.random.default_rng(5)
    close = panel.close.copy()
    close[t + 1 :] *= np.exp(0.3 * rng.standard_normal(close[t + 1 :].shape))
    moved = panel.with_close(close)
    a = stream.stream_models(panel, book, _models(), chunk_accounts=80, **kw)
    b = stream.stream_models(moved, book, _models(), chunk_accounts=80, **kw)
    rows = t - kw["start"] + 1  # window rows of dates <= t
    pd.testing.assert_frame_equal(a.margin_over_time().iloc[:rows], b.margin_over_time().iloc[:rows])
    for k in a.results:
        # coverage counts of date s need the loss to s + h: those up to t - h are known at t
        n = rows - kw["mpor"]
        assert (a.results[k].agg.X[:n] == b.results[k].agg.X[:n]).all()
        assert (a.results[k].agg.N[:n] == b.results[k].agg.N[:n]).all()
        ea, eb = a.results[k].events, b.results[k].events
        assert ea[ea["t"] <= t].tobytes() == eb[eb["t"] <= t].tobytes()


def test_feedback_and_bad_chunks_are_refused(setup):
    panel, book, kw, _ = setup
    with pytest.raises(UserError, match="feedback"):
        stream.stream_models(panel, book, _models(), **{**kw, "policy": LiquidationPolicy(feedback=True,
                                                                                       closeout="impact")})
    with pytest.raises(UserError, match="chunk_accounts"):
        stream.stream_models(panel, book, _models(), chunk_accounts=0, **kw)


def test_chunk_size_rule():
    assert stream.chunk_size(0, 1_000) == 0
    assert stream.chunk_size(0, stream.STREAM_ABOVE + 1) == stream.DEFAULT_CHUNK
    assert stream.chunk_size(0, 10, forced=True) == stream.DEFAULT_CHUNK
    assert stream.chunk_size(700, 10) == 700


def test_config_key_is_checked():
    from riskmodels.config import load_config

    cfg = load_config(None, {"backtest": {"chunk_accounts": 5000}})
    assert cfg["backtest"]["chunk_accounts"] == 5000
    with pytest.raises(UserError, match="chunk_accounts"):
        load_config(None, {"backtest": {"chunk_accounts": -1}})
    with pytest.raises(UserError, match="chunk_accounts"):
        load_config(None, {"backtest": {"chunk_accounts": "many"}})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=64) | st.sampled_from([0.0, 0.05, 0.05, 1.0]),
                min_size=1, max_size=400),
       st.integers(0, 2**20 - 1), st.integers(0, 2**20 - 1), st.integers(1, 7))
def test_exact_percentile_is_numpy_percentile(values, b0, b1, n_chunks):
    x = np.asarray(values, dtype=np.float64)
    want = float(np.percentile(x, 95.0))
    bins = sa.order_bins(x)
    hist = np.zeros(sa.N_BINS, dtype=np.int64)
    for part in np.array_split(bins, n_chunks):  # histograms of chunks add
        np.add.at(hist, part, 1)
    band = (min(b0, b1), max(b0, b1))
    keep = x[(bins >= band[0]) & (bins <= band[1])]
    got = sa.exact_percentile(hist, band, keep)
    assert got is None or got == want
    need = sa.needed_bins(hist)
    got2 = sa.exact_percentile(hist, need, x[(bins >= need[0]) & (bins <= need[1])])
    assert got2 == want


@given(st.lists(st.floats(allow_nan=False, allow_infinity=True, width=64), min_size=2, max_size=200))
def test_order_bins_are_monotone(values):
    x = np.sort(np.asarray(values, dtype=np.float64))
    b = sa.order_bins(x)
    assert (np.diff(b) >= 0).all()
    assert ((b >= 0) & (b < sa.N_BINS)).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=64) | st.sampled_from([0.0, 0.05, 0.05, 0.1]),
                min_size=1, max_size=400),
       st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_pilot_band_from_the_histogram_holds_numpy_percentiles_band(values, q0, q1):
    """The bins of ``numpy.percentile(x, [q_lo, q_hi])`` (the values' band) lie inside the histogram's band."""
    x = np.asarray(values, dtype=np.float64)
    q_lo, q_hi = min(q0, q1), max(q0, q1)
    bins = sa.order_bins(x)
    hist = np.bincount(bins, minlength=sa.N_BINS)
    lo, hi = stream.band_from_hist(hist, q_lo, q_hi)
    want_lo, want_hi = sa.order_bins(np.percentile(x, [q_lo, q_hi]))
    assert lo <= want_lo and want_hi <= hi
    # and no wider than the order statistics' own bins
    s = np.sort(x)
    assert lo == sa.order_bins(s[[int(np.floor((x.size - 1) * q_lo / 100))]])[0]


def test_dask_client_started_during_the_fit_is_closed_when_the_fit_fails(setup, monkeypatch):
    closed = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def run(self, fn, *args):
            pass

        def close(self):
            closed.append(self.name)

    monkeypatch.setattr(stream_runners, "_connect_dask", lambda workers, scheduler: (Fake("client"), Fake("cluster")))

    def broken(*_a, **_k):
        raise RuntimeError("fit failed")

    monkeypatch.setattr(stream, "fit_models", broken)
    with pytest.raises(RuntimeError, match="fit failed"):
        _stream(setup, chunk_accounts=100, workers=2)
    assert closed == ["client", "cluster"]


def test_dask_start_closes_the_cluster_when_the_workers_cannot_preload(monkeypatch):
    closed = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def run(self, fn, *args):
            raise ImportError("no riskmodels on the worker")

        def close(self):
            closed.append(self.name)

    monkeypatch.setattr(stream_runners, "_connect_dask", lambda workers, scheduler: (Fake("client"), Fake("cluster")))
    start = stream_runners.DaskStart(2, None)
    with pytest.raises(ImportError, match="no riskmodels"):
        start.get()
    assert closed == ["client", "cluster"]
    start.close()  # nothing left to close
    assert closed == ["client", "cluster"]


@pytest.mark.parametrize("scheduler", [None, "tcp://127.0.0.1:1"])
def test_dask_workers_keep_freed_memory_only_in_our_own_local_cluster(monkeypatch, scheduler):
    """A LocalCluster's workers end with the run: their allocator is tuned; a user's scheduler's workers are not."""
    calls = []

    class Fake:
        def run(self, fn, *args):
            calls.append((fn, args))

        def close(self):
            pass

    monkeypatch.setattr(stream_runners, "_connect_dask",
                        lambda workers, sched: (Fake(), None if sched else Fake()))
    start = stream_runners.DaskStart(None if scheduler else 2, scheduler)
    start.get()
    start.close()
    assert calls == [(stream_runners._preload_worker, (scheduler is None, ()))]
    tuned = []
    monkeypatch.setattr("riskmodels.workers.tune_allocator", lambda: tuned.append(True) or True)
    stream_runners._preload_worker(scheduler is None)
    assert tuned == ([True] if scheduler is None else [])


def test_per_asset_fits_on_an_executor_give_the_serial_fit_and_run_last(setup, monkeypatch):
    """A cluster's executor for the GARCH / EWMA per-asset fits: same fitted states, model order kept, fitted last."""
    from concurrent.futures import ThreadPoolExecutor

    from riskmodels.backtest import stream_chunk
    from riskmodels.backtest.stream_chunk import fit_models, fits_per_asset

    panel, _book, kw, _ = setup
    models = [*_models(), get("garch", label="GARCH", refit_every=60, min_history=200)]
    assert [fits_per_asset(m) for m in models] == [False, False, False, False, True, True]
    floor = get("apc_floor", inner=get("historical_var", label="HS"), floor_model=get("ewma", label="EWMA floor"))
    assert fits_per_asset(floor)
    serial, _s, w_serial = fit_models(models, panel, kw["policy"])
    order: list[str] = []
    calls: list[int] = []
    real = stream_chunk.apply_rule

    def spy(fitted, ratio):
        order.append(fitted.model.label)
        return real(fitted, ratio)

    monkeypatch.setattr(stream_chunk, "apply_rule", spy)
    with ThreadPoolExecutor(2) as ex:
        def provider():
            calls.append(len(order))
            return ex
        shared, secs, w_shared = fit_models(models, panel, kw["policy"], provider)
    assert order == [m.label for m in models[:4]] + ["EWMA", "GARCH"]  # the cheap fits first, in model order
    assert calls == [4, 5]  # asked only by the per-asset fits, after the cheap ones
    assert list(secs) == [m.label for m in models]
    assert w_shared == w_serial
    for a, b in zip(serial, shared, strict=True):
        assert type(a) is type(b)
    for i in (4, 5):
        pd.testing.assert_frame_equal(pd.DataFrame(serial[i].inner.fit_log), pd.DataFrame(shared[i].inner.fit_log))
        t = panel.n_dates - 1
        x = np.ones((1, panel.n_assets))
        assert np.array_equal(serial[i].requirement(t, x, 0 * x).maintenance,
                              shared[i].requirement(t, x, 0 * x).maintenance, equal_nan=True)


def test_one_worker_cluster_keeps_the_fits_in_the_client(monkeypatch):
    class Fake:
        def __init__(self, n):
            self.n = n

        def run(self, fn, *args):
            pass

        def scheduler_info(self):
            return {"workers": {str(i): {} for i in range(self.n)}}

        def get_executor(self, pure=False):
            return "executor"

        def close(self):
            pass

    for n, want in ((1, None), (2, "executor")):
        monkeypatch.setattr(stream_runners, "_connect_dask", lambda workers, sched, n=n: (Fake(n), Fake(n)))
        start = stream_runners.DaskStart(n, None)
        assert start.asset_executor() == want
        start.close()


def test_fit_warnings_are_the_fitting_threads_only(setup):
    """A warning of another thread (the Dask start-up) during the fits is shown, not attached to the models."""
    import threading
    import warnings

    from riskmodels.backtest.stream_chunk import fit_models, thread_warnings

    panel, _book, kw, _ = setup
    go = threading.Event()

    def other():
        go.wait(5)
        warnings.warn("from the dask start-up thread", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as outer:  # the handler before the block: what a run would show
        warnings.simplefilter("always")
        with thread_warnings() as got:
            th = threading.Thread(target=other)
            th.start()
            warnings.warn("from the fit", RuntimeWarning, stacklevel=1)
            go.set()
            th.join()
    assert got == [(RuntimeWarning, "from the fit")]
    assert [str(w.message) for w in outer] == ["from the dask start-up thread"]
    _f, _s, w = fit_models(_models(), panel, kw["policy"])
    assert all(isinstance(c, type) and issubclass(c, Warning) and isinstance(m, str) for c, m in w)
