"""The option backtest: expiry settlement, the Deribit standard rule, hedges, no look-ahead, the CLI example."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.backtest.options_market import OptionMarket
from riskmodels.backtest.options_path import option_path, simulate_option_accounts
from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.errors import UserError
from riskmodels.instruments import black76
from riskmodels.instruments.options import OptionState, OptionTable
from riskmodels.instruments.vol import FileVol, ProxyVol
from riskmodels.margin.base import FittedMargin, MarginModel, Requirement, get
from riskmodels.portfolio import Book
from tests.conftest import make_panel, random_walk_panel


def _flat_vol(panel, iv: float = 0.6) -> FileVol:
    d = panel.dates.values.astype("datetime64[D]")
    q = pd.DataFrame({"date": np.repeat(d, panel.n_assets), "asset": np.tile(panel.assets, len(d)),
                      "tenor_days": 30.0, "kind": "atm", "x": 0.0, "iv": iv})
    return FileVol(q, panel, "file: flat")


def test_deribit_standard_rule_by_hand() -> None:
    """Deribit standard option margin (options_haircut docstring) on three positions, against hand arithmetic."""
    panel = make_panel(np.full((5, 1), 40000.0), ("BTC",))
    fitted = get("fixed_haircut", haircut=0.0, imf=0.0, mmf=0.0).fit(panel)
    tab = OptionTable(("BTC",), [0, 1, 2], [0, 0, 0], [True, False, True], [44000.0, 38000.0, 40000.0],
                      np.array(["2021-03-26"] * 3, dtype="datetime64[D]"), [-2.0, -1.0, 3.0])
    tau = np.full(3, 30 / 365)
    iv = np.array([0.7, 0.8, 0.6])
    spot = np.array([40000.0])
    st = OptionState(tab, tau, iv, spot, _flat_vol(panel))
    req = fitted.option_requirement(0, np.zeros((3, 1)), np.zeros((3, 1)), st)
    S = 40000.0
    # short 2 calls K = 44,000: OTM 4,000 -> max(0.15 - 0.1, 0.10) = 0.10 -> IM 2 x 4,000; MM 2 x 0.075 S
    assert req.initial[0] == pytest.approx(2 * 0.10 * S) and req.maintenance[0] == pytest.approx(2 * 0.075 * S)
    # short put K = 38,000: OTM 2,000 -> max(0.15 - 0.05, 0.10) S = 4,000; MM max(0.075 S, 0.075 mark) = 3,000
    put = float(black76.price(S, 38000.0, 30 / 365, 0.8, False))
    assert req.initial[1] == pytest.approx(max(0.10 * S, 0.075 * S, 0.075 * put))
    assert req.maintenance[1] == pytest.approx(max(0.075 * S, 0.075 * put))
    # long 3 ATM calls: IM = MM = the premium
    call = float(black76.price(S, S, 30 / 365, 0.6, True))
    assert req.initial[2] == pytest.approx(3 * call) and req.maintenance[2] == pytest.approx(3 * call)
    # deep ITM short call: OTM 0 -> 0.15 S
    tab2 = OptionTable(("BTC",), [0], [0], [True], [30000.0], np.array(["2021-03-26"], dtype="datetime64[D]"), [-1.0])
    r2 = fitted.option_requirement(0, np.zeros((1, 1)), np.zeros((1, 1)),
                                   OptionState(tab2, tau[:1], iv[:1], spot, _flat_vol(panel)))
    assert r2.initial[0] == pytest.approx(0.15 * S)


class _LinearOnly(MarginModel):
    """A user's model that prices linear books only (every built-in model now prices options)."""

    name = "linear_only_test_model"

    def fit(self, panel):
        class _Fitted(FittedMargin):
            def requirement(self, t, collateral, positions):
                z = 0.1 * np.abs(collateral + positions).sum(axis=1)
                return Requirement(z, z)

        return _Fitted(self, panel)


def test_models_without_options_raise_a_designed_error() -> None:
    panel = random_walk_panel(T=50, A=1)
    fitted = _LinearOnly().fit(panel)
    tab = OptionTable.empty(panel.assets)
    with pytest.raises(UserError, match="does not price options"):
        fitted.option_requirement(0, np.zeros((1, 1)), np.zeros((1, 1)),
                                  OptionState(tab, np.zeros(0), np.zeros(0), panel.close[0], _flat_vol(panel)))


def _one_option_book(panel, *, call=True, K=100.0, q=1.0, expiry_day=10, trade_day=None, hedged=False) -> Book:
    d = panel.dates.values.astype("datetime64[D]")
    trade = None if trade_day is None else [d[trade_day]]
    tab = OptionTable(panel.assets, [0], [0], [call], [K], [d[expiry_day]], [q], None, trade, [hedged])
    return Book(panel.assets, np.zeros((1, 1)), np.zeros((1, 1)), options=tab)


def test_expiry_settles_at_intrinsic_and_conserves_equity() -> None:
    close = np.r_[np.linspace(100, 110, 8), np.full(8, 110.0)]
    panel = make_panel(close, ("BTC",))
    book = _one_option_book(panel, K=100.0, q=2.0, expiry_day=10)
    mkt = OptionMarket(panel, book.options, _flat_vol(panel))
    fitted = get("fixed_haircut").fit(panel)
    sim, flows = simulate_option_accounts(fitted, book, mkt, LiquidationPolicy(), start=1, end=15)
    assert flows["settlements"] == 1 and flows["settled_cash"] == pytest.approx(2 * (110.0 - 100.0))
    eq = sim.equity[:, 0].astype(float)
    assert eq[10 - 1] == pytest.approx(eq[11 - 1], rel=1e-6)  # the settled cash is the option's last mark
    assert np.allclose(eq[10 - 1:], eq[-1], rtol=1e-6)  # nothing moves the account after expiry
    assert len(sim.events) == 0  # a fully paid long option is never liquidated


def test_rolled_leg_enters_at_its_mark_and_delta_hedge_offsets_delta() -> None:
    panel = random_walk_panel(T=80, A=1, seed=4)
    d = panel.dates.values.astype("datetime64[D]")
    tab = OptionTable(panel.assets, [0, 0], [0, 0], [True, False], [100.0, 100.0], [d[40], d[40]], [-1.0, -1.0],
                      None, [d[5], d[5]], [True, True])
    book = Book(panel.assets, np.zeros((1, 1)), np.zeros((1, 1)), options=tab)
    vol = _flat_vol(panel)
    mkt = OptionMarket(panel, book.options, vol)
    assert not mkt.held(4).any() and mkt.held(5).all() and mkt.held(39).all() and not mkt.held(40).any()
    idx = np.arange(2)
    h = mkt.hedge_units(20, idx, 1, panel.close[20], mkt.iv(20, idx))
    g = black76.greeks(panel.close[20, 0], 100.0, (d[40] - d[20]).astype(float) / 365, 0.6, np.array([True, False]))
    assert h[0, 0] == pytest.approx(g.delta.sum())  # short straddle: hedge = +sum(delta) units
    fitted = get("fixed_haircut").fit(panel)
    sim, flows = simulate_option_accounts(fitted, book, mkt, LiquidationPolicy(intraday=False), start=1, end=60)
    assert flows["top_ups"] > 0  # opened with nothing to margin, the account posts IM when the legs trade
    S5 = panel.close[5, 0]
    g5 = black76.greeks(S5, 100.0, (d[40] - d[5]).astype(float) / 365, 0.6, np.array([True, False]))
    # Deribit standard on the short straddle (short call and put: 0.15 S each at the money, by the rule's
    # max(0.15 - OTM / S, 0.10) with OTM of one leg 0) plus IMF 5% on the hedge perp's notional
    otm = abs(S5 - 100.0)
    im = (max(0.15 - (otm if S5 < 100 else 0) / S5, 0.10) + max(0.15 - (otm if S5 > 100 else 0) / S5, 0.10)) * S5
    im = max(im, 0.0) + 0.05 * abs(g5.delta.sum()) * S5
    assert sim.is_open[5 - 1, 0]
    assert sim.equity[5 - 1, 0] == pytest.approx(1.5 * im, rel=1e-5)
    straddle = float(black76.price(panel.close[5, 0], 100.0, (d[40] - d[5]).astype(float) / 365, 0.6, True)
                     + black76.price(panel.close[5, 0], 100.0, (d[40] - d[5]).astype(float) / 365, 0.6, False))
    assert flows["premium_paid"] == pytest.approx(-straddle)  # premium received for the short legs


def test_iv_nan_for_a_held_option_names_the_position() -> None:
    panel = random_walk_panel(T=40, A=1, seed=1)
    d = panel.dates.values.astype("datetime64[D]")
    q = pd.DataFrame({"date": d[:10], "asset": panel.assets[0], "tenor_days": 30.0, "kind": "atm", "x": 0.0,
                      "iv": 0.5})
    vol = FileVol(q, panel, "file: short.csv", max_age_days=2)
    tab = OptionTable(panel.assets, [0], [0], [True], [100.0], [d[35]], [1.0], ("bob BTC call 100",))
    mkt = OptionMarket(panel, tab, vol)
    mkt.iv(5, np.array([0]))
    with pytest.raises(UserError, match=r"option bob BTC call 100: implied vol nan on 2020-01-21 is NaN or <= 0 \(file: short.csv\)"):
        mkt.iv(20, np.array([0]))


def test_no_look_ahead_in_path_loss_inputs_and_simulation() -> None:
    """Perturb prices and implied vols after t: the margin path and the simulated equity up to t do not change."""
    from riskmodels.instruments.generate import generate_option_book
    from riskmodels.portfolio import generate_book

    panel = random_walk_panel(T=260, A=2, seed=9)
    panel = panel.select(panel.assets)
    t = 200
    rng = np.random.default_rng(1)
    close = panel.close.copy()
    close[t + 1:] *= np.exp(rng.normal(0, 0.1, close[t + 1:].shape))
    other = panel.with_close(close)
    base = generate_book(panel.assets, 20, seed=3)

    def run(p, iv_bump: float):
        d = p.dates.values.astype("datetime64[D]")
        iv = np.where(np.arange(len(d)) > t, 0.6 + iv_bump, 0.6)
        q = pd.DataFrame({"date": np.repeat(d, 2), "asset": np.tile(p.assets, len(d)), "tenor_days": 30.0,
                          "kind": "atm", "x": 0.0, "iv": np.repeat(iv, 2)})
        vol = FileVol(q, p, "file")
        book = generate_option_book(p, base, vol, seed=2, start=120, end=250, underlyings=p.assets)
        mkt = OptionMarket(p, book.options, vol)
        fitted = get("fixed_haircut").fit(p)
        elig = np.ones((p.n_dates, book.n_accounts), dtype=bool)
        path = option_path(fitted, book, mkt, elig, 120, 250)
        sim, _ = simulate_option_accounts(fitted, book, mkt, LiquidationPolicy(), start=120, end=250)
        return book, path, sim

    b1, p1, s1 = run(panel, 0.0)
    b2, p2, s2 = run(other, 0.4)
    live1 = b1.options.trade <= panel.dates.values.astype("datetime64[D]")[t]
    live2 = b2.options.trade <= panel.dates.values.astype("datetime64[D]")[t]
    np.testing.assert_array_equal(b1.options.strike[live1], b2.options.strike[live2])
    r = t - 120
    np.testing.assert_array_equal(p1.initial[: r + 1], p2.initial[: r + 1])
    np.testing.assert_array_equal(s1.equity[: r + 1], s2.equity[: r + 1])
    assert not np.allclose(p1.initial[r + 5:], p2.initial[r + 5:], equal_nan=True)  # the perturbation bites


def test_proxy_vol_is_the_default_and_is_labelled(tmp_path: Path) -> None:
    panel = random_walk_panel(T=100, A=1)
    assert ProxyVol(panel).label.startswith("proxy:")


def _example(tmp_path: Path) -> Path:
    from riskmodels.config_examples import example_text

    text = example_text("options")
    doc = tomllib.loads(text)
    assert [m["name"] for m in doc["models"]] == ["fixed_haircut", "scenario_grid", "deribit_pm", "historical_var",
                                                  "filtered_hs", "garch", "derive_pm"]
    text = text.replace('end = "2022-06-30"        # 18 months, through the 2022 crash',
                        'end = "2021-03-31"\ndir = "embedded"').replace("accounts = 200", "accounts = 30")
    p = tmp_path / "options.toml"
    p.write_text(text)
    return p


def test_cli_runs_the_options_example_end_to_end(tmp_path: Path, capsys) -> None:
    from riskmodels.cli import main

    cfg = _example(tmp_path)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="option marks use proxy implied vols"):
        assert main(["backtest", "--config", str(cfg), "--out", str(out)]) == 0
    assert "Options: per instrument type (implied vols: proxy: EWMA(0.94)" in (out / "report.html").read_text()
    inst = pd.read_csv(out / "instruments.csv")
    assert list(inst["instrument"]) == ["spot", "perp", "option"] * 7  # per model
    assert inst["model"].nunique() == 7
    assert inst["vol_source"].str.startswith("proxy:").all()
    opt = inst[inst["instrument"] == "option"].iloc[0]
    assert opt["positions"] > 30 and opt["settlements"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vol_source"].startswith("proxy: EWMA(0.94)")
    assert pd.read_csv(out / "summary.csv")["vol_source"].str.startswith("proxy:").all()
    cov = pd.read_csv(out / "coverage.csv")
    assert len(cov)
    again = tmp_path / "again"
    with pytest.warns(UserWarning):
        assert main(["backtest", "--config", str(cfg), "--out", str(again), "--quiet"]) == 0
    assert (out / "netting.csv").exists()
    for f in ("instruments.csv", "margin_paths.parquet", "liquidations.csv", "coverage.csv", "summary.csv",
              "netting.csv"):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f  # same config, same bytes


def test_feedback_with_options_is_refused() -> None:
    panel = random_walk_panel(T=30, A=1)
    book = _one_option_book(panel, expiry_day=20)
    mkt = OptionMarket(panel, book.options, _flat_vol(panel))
    pol = LiquidationPolicy(closeout="impact", feedback=True)
    with pytest.raises(UserError, match="feedback"):
        simulate_option_accounts(get("fixed_haircut").fit(panel), book, mkt, pol, start=1, end=20)


def test_declared_rule_wrapper_forwards_options() -> None:
    """A risk model run under the declared MM rule keeps its option pricing: MM = ratio x IM of the inner model."""
    from riskmodels.backtest.mm_rule import DeclaredMaintenance
    from riskmodels.margin.base import Requirement

    panel = random_walk_panel(T=30, A=1)
    inner = get("fixed_haircut").fit(panel)
    w = DeclaredMaintenance(inner, 0.5)
    assert w.supports_options
    tab = OptionTable(panel.assets, [0], [0], [True], [100.0], np.array(["2021-03-26"], dtype="datetime64[D]"),
                      [-1.0])
    st = OptionState(tab, np.array([0.1]), np.array([0.6]), panel.close[5], _flat_vol(panel))
    a = inner.option_requirement(5, np.zeros((1, 1)), np.zeros((1, 1)), st)
    b = w.option_requirement(5, np.zeros((1, 1)), np.zeros((1, 1)), st)
    assert isinstance(b, Requirement) and b.initial[0] == a.initial[0] and b.maintenance[0] == 0.5 * a.initial[0]
    assert not DeclaredMaintenance(_LinearOnly().fit(panel), 0.5).supports_options


@settings(max_examples=60, deadline=None)
@given(k=st.floats(0.01, 100.0), S=st.floats(10.0, 1e5), m=st.floats(-0.5, 0.5), q=st.floats(-5.0, 5.0),
       call=st.booleans(), iv=st.floats(0.1, 2.0))
def test_option_haircut_is_homogeneous_in_size(k: float, S: float, m: float, q: float, call: bool,
                                                iv: float) -> None:
    """Scaling every amount and quantity by k scales IM and MM by k (the rule is per unit of position)."""
    panel = make_panel(np.full((3, 1), S), ("BTC",))
    fitted = get("fixed_haircut").fit(panel)
    exp = np.array(["2021-03-26"], dtype="datetime64[D]")

    def req(scale: float):
        tab = OptionTable(("BTC",), [0], [0], [call], [S * np.exp(m)], exp, [q * scale])
        stt = OptionState(tab, np.array([0.1]), np.array([iv]), np.array([S]), _flat_vol(panel))
        return fitted.option_requirement(0, np.array([[1000.0 * scale]]), np.array([[-500.0 * scale]]), stt)

    a, b = req(1.0), req(k)
    assert b.initial[0] == pytest.approx(k * a.initial[0], rel=1e-9, abs=1e-9)
    assert b.maintenance[0] == pytest.approx(k * a.maintenance[0], rel=1e-9, abs=1e-9)
    assert a.initial[0] >= a.maintenance[0] - 1e-9 * S


def test_option_kernel_equals_the_linear_kernel_on_a_one_asset_linear_book() -> None:
    """With no options and one asset (where "every underlying at the low / high" is the linear rule's adverse
    extreme), the option simulation reproduces the tested linear simulation: same events, same equity."""
    from riskmodels.backtest.simulation import simulate_accounts

    panel = random_walk_panel(T=400, A=1, seed=11, vol=0.05)
    rng = np.random.default_rng(2)
    P = 60
    coll = np.where(rng.random((P, 1)) < 0.5, rng.uniform(1e3, 1e4, (P, 1)), 0.0)
    pos = rng.normal(0, 2e4, (P, 1))
    book = Book(panel.assets, coll, pos, options=OptionTable.empty(panel.assets))
    fitted = get("fixed_haircut", imf=0.08, mmf=0.04).fit(panel)
    pol = LiquidationPolicy(cushion=0.2, reentry_days=3)
    lin = simulate_accounts(fitted, Book(panel.assets, coll, pos), pol, start=50, end=399)
    opt, _ = simulate_option_accounts(fitted, book, OptionMarket(panel, book.options, _flat_vol(panel)), pol,
                                      start=50, end=399)
    assert len(lin.events) > 10
    for f in ("account", "t", "trigger"):
        np.testing.assert_array_equal(opt.events[f], lin.events[f])
    for f in ("equity", "bad_debt", "slippage", "penalty"):
        np.testing.assert_allclose(opt.events[f], lin.events[f], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(opt.equity, lin.equity, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(opt.is_open, lin.is_open)


def test_cli_book_file_with_options_runs_on_the_proxy(tmp_path: Path) -> None:
    from riskmodels.cli import main

    (tmp_path / "book.toml").write_text(
        '[[account]]\nid = "writer"\ncash = 20000\ncollateral = { BTC = 30000 }\n'
        'options = [{ asset = "BTC", type = "call", strike = 36000, expiry = "2021-01-29", quantity = -1 },\n'
        '           { asset = "BTC", type = "call", strike = 40000, expiry = "2021-02-26", quantity = -1,'
        ' trade = "2021-01-29" }]\n'
        '[[account]]\nid = "hedger"\ncash = 5000\n'
        'options = [{ asset = "ETH", type = "put", strike = 700, expiry = "2021-02-26", quantity = -10,'
        ' hedged = true }]\n')
    cfg = tmp_path / "run.toml"
    cfg.write_text('[data]\ndir = "embedded"\nuniverse = ["BTC", "ETH"]\nstart = "2021-01-01"\nend = "2021-02-28"\n'
                   f'[book]\nsource = "{tmp_path / "book.toml"}"\n[backtest]\nn_jobs = 1\nnetting = false\n'
                   '[[models]]\nname = "fixed_haircut"\nlabel = "Deribit standard"\n')
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="proxy"):
        assert main(["backtest", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    inst = pd.read_csv(out / "instruments.csv").set_index("instrument")
    assert inst.loc["option", "positions"] == 3 and inst.loc["option", "settlements"] >= 1
    paths = pd.read_parquet(out / "margin_paths.parquet")
    assert set(paths["account"]) == {"writer", "hedger"} and (paths["initial"] >= 0).all()
    h = paths[paths["account"] == "hedger"].set_index("date")["initial"]
    assert (h[:"2021-02-25"] > 0).all() and (h["2021-02-26":] == 0).all()  # the short put has settled


def test_coverage_loss_of_an_option_is_its_repricing_over_the_mpor() -> None:
    """L[t] = -q (V(S_{t+h}, tau_{t+h}, iv_{t+h}) - V(S_t, tau_t, iv_t)), an independent math.erf Black-76;
    inside the MPOR of its expiry the option is worth its settlement (intrinsic at the expiry close)."""
    from tests.test_black76 import ref_price

    panel = random_walk_panel(T=60, A=1, seed=6)
    d = panel.dates.values.astype("datetime64[D]")
    iv = np.linspace(0.5, 0.9, 60)
    q = pd.DataFrame({"date": d, "asset": panel.assets[0], "tenor_days": 30.0, "kind": "atm", "x": 0.0, "iv": iv})
    vol = FileVol(q, panel, "file")
    tab = OptionTable(panel.assets, [0], [0], [False], [98.0], [d[40]], [-3.0])
    mkt = OptionMarket(panel, tab, vol)
    h = 2
    parts = mkt.loss_parts(np.zeros((1, 1)), h, 10, 45)
    C = panel.close[:, 0]

    def V(t: int) -> float:
        return ref_price(C[t], 98.0, (d[40] - d[t]).astype(float) / 365, iv[t], False)

    for t in (10, 25, 37):
        assert parts["option"][t - 10, 0] == pytest.approx(3.0 * (V(t + h) - V(t)), rel=1e-10, abs=1e-10)
    # t = 39: expiry at 40 is inside the MPOR -> valued at its settlement max(K - S_40, 0)
    assert parts["option"][39 - 10, 0] == pytest.approx(3.0 * (max(98.0 - C[40], 0.0) - V(39)), rel=1e-10,
                                                        abs=1e-10)
    assert parts["option"][41 - 10, 0] == 0.0  # settled: no longer held


def test_short_call_life_cash_is_premium_minus_settlement() -> None:
    """Opened at IM x (1 + cushion) with a short call: after expiry equity = opening equity + premium received
    - intrinsic paid, whatever the path (no liquidation with a large cushion)."""
    panel = random_walk_panel(T=60, A=1, seed=8)
    book = _one_option_book(panel, K=101.0, q=-2.0, expiry_day=30)
    vol = _flat_vol(panel, 0.7)
    mkt = OptionMarket(panel, book.options, vol)
    fitted = get("fixed_haircut").fit(panel)
    pol = LiquidationPolicy(cushion=20.0)
    sim, flows = simulate_option_accounts(fitted, book, mkt, pol, start=2, end=50)
    d = panel.dates.values.astype("datetime64[D]")
    S2, S30 = panel.close[2, 0], panel.close[30, 0]
    v0 = float(black76.price(S2, 101.0, (d[30] - d[2]).astype(float) / 365, 0.7, True))
    im0 = max(0.15 - max(101.0 - S2, 0.0) / S2, 0.10) * S2 * 2  # Deribit standard, short call
    assert sim.equity[0, 0] == pytest.approx(21.0 * im0, rel=1e-6)
    # equity after settlement = opening equity + option P&L from its opening mark to its settlement
    assert sim.equity[30 - 2, 0] == pytest.approx(21.0 * im0 - 2.0 * (max(S30 - 101.0, 0.0) - v0), rel=1e-6)
    assert flows["settled_cash"] == pytest.approx(-2.0 * max(S30 - 101.0, 0.0))
    assert len(sim.events) == 0


def test_an_option_on_its_expiry_day_keeps_a_positive_vol() -> None:
    """The intraday check of day t prices the options held at t-1's close; one expiring at t has tau = 0 (priced
    at intrinsic) and still gets an IV > 0 (the margin methods refuse IV <= 0)."""
    panel = random_walk_panel(T=30, A=1)
    book = _one_option_book(panel, expiry_day=10)
    mkt = OptionMarket(panel, book.options, _flat_vol(panel, 0.4))
    assert mkt.iv(10, np.array([0]))[0] == pytest.approx(0.4)
    assert mkt.unit_marks(10, np.array([0]))[0] == pytest.approx(max(panel.close[10, 0] - 100.0, 0.0))


def test_parallel_models_give_the_serial_numbers() -> None:
    from riskmodels.backtest.engine import run_models
    from riskmodels.instruments.generate import generate_option_book
    from riskmodels.margin.base import get as get_model
    from riskmodels.portfolio import generate_book

    panel = random_walk_panel(T=260, A=2, seed=4)
    vol = ProxyVol(panel)
    book = generate_option_book(panel, generate_book(panel.assets, 20, seed=1), vol, seed=2, start=200, end=250,
                                underlyings=panel.assets)
    models = [get_model("fixed_haircut", label="a"), get_model("fixed_haircut", imf=0.1, mmf=0.06, label="b")]
    kw = dict(mpor=2, min_history=60, start=200, end=250, vol=vol, netting=False)
    with pytest.warns(UserWarning, match="proxy"):
        one = run_models(panel, book, models, n_jobs=1, **kw)
    with pytest.warns(UserWarning, match="proxy"):
        two = run_models(panel, book, models, n_jobs=2, **kw)
    assert list(two.results) == ["a", "b"]
    for lab in ("a", "b"):
        x, y = one.results[lab], two.results[lab]
        np.testing.assert_array_equal(x.path.initial, y.path.initial)
        np.testing.assert_array_equal(x.simulation.equity, y.simulation.equity)
        np.testing.assert_array_equal(x.simulation.events, y.simulation.events)
        pd.testing.assert_frame_equal(x.instruments, y.instruments)


def test_netting_path_prices_every_holding_alone() -> None:
    """Deribit's standard margin has no offsets between positions: each account's cross IM equals the sum of
    its holdings' stand-alone IMs (netting benefit 0), and the isolated path is that sum, by hand for one date."""
    from riskmodels.instruments.generate import generate_option_book
    from riskmodels.portfolio import generate_book

    panel = random_walk_panel(T=260, A=2, seed=4)
    vol = ProxyVol(panel)
    book = generate_option_book(panel, generate_book(panel.assets, 15, seed=1), vol, seed=2, start=200, end=250,
                                underlyings=panel.assets, strategies_per_account=(1, 3))
    mkt = OptionMarket(panel, book.options, vol)
    fitted = get("fixed_haircut", netting=False).fit(panel)
    elig = np.ones((panel.n_dates, book.n_accounts), dtype=bool)
    path, iso = option_path(fitted, book, mkt, elig, 200, 250, isolated=True)
    np.testing.assert_allclose(iso.initial, path.initial, rtol=1e-12)
    # one date by hand: each option alone through the rule, plus the linear holdings alone
    t = 220
    idx = np.flatnonzero(mkt.held(t))
    iv = mkt.iv(t, idx)
    tab = book.options
    per = np.zeros(book.n_accounts)
    for i, v in zip(idx, iv, strict=True):  # a reference loop over positions (test only)
        one = OptionTable(tab.assets, [0], [tab.asset[i]], [tab.is_call[i]], [tab.strike[i]], [tab.expiry[i]],
                          [tab.quantity[i]])
        st1 = OptionState(one, mkt.tau(t, np.array([i])), np.array([v]), panel.close[t], vol)
        per[tab.account[i]] += fitted.option_requirement(t, np.zeros((1, 2)), np.zeros((1, 2)), st1).initial[0]
    hedge = mkt.hedge_units(t, idx, book.n_accounts, panel.close[t], iv) * panel.close[t]
    lin = fitted.isolated_requirement(t, book.collateral, book.positions + hedge).initial
    np.testing.assert_allclose(iso.initial[t - 200], per + lin, rtol=1e-12)
