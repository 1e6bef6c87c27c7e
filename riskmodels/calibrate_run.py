"""The :func:`calibrate` entry point: the least-capital value of one parameter meeting a target.

Builds the books (per asset or one joint book), picks the search range
(``DEFAULT_BOUNDS`` unless given) and runs :func:`riskmodels.calibrate_search._search`
for each; the targets and the method are described in :mod:`riskmodels.calibrate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from riskmodels.backtest.simulation import LiquidationPolicy
from riskmodels.calibrate_search import (
    BOOK_KINDS,
    CalibrationResult,
    ModelFactory,
    _factory,
    _Problem,
    _search,
    single_asset_book,
)
from riskmodels.calibrate_targets import Target
from riskmodels.data.panel import PricePanel
from riskmodels.portfolio import Book

#: default search ranges of common parameters (the models' valid ranges, narrowed where useful)
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "haircut": (0.0, 1.0),
    "maintenance_haircut": (0.0, 1.0),
    "imf": (0.0, 1.0),
    "mmf": (0.0, 1.0),
    "collateral_haircut": (0.0, 1.0),
    "psr_floor": (0.0, 1.0),
    "extreme_multiplier": (1.0, 10.0),
    "im_multiplier": (1.0, 2.0),
    "confidence": (0.9, 0.999),
    "psr_quantile": (0.9, 0.999),
    "price_range": (0.01, 1.0),
}


# --------------------------------------------------------------------------- API
def calibrate(
    panel: PricePanel,
    model: str | ModelFactory,
    param: str,
    target: Target | str = "coverage",
    *,
    per_asset: bool = True,
    assets: Sequence[str] | None = None,
    book: Book | str = "collateral",
    fixed: Mapping[str, Any] | None = None,
    tie: Mapping[str, float] | None = None,
    bounds: tuple[float, float] | None = None,
    values: Sequence[float] | None = None,
    integer: bool = False,
    increasing: bool = True,
    grid: int = 11,
    xtol: float = 1e-4,
    max_iter: int = 60,
    mpor: int = 2,
    min_history: int = 0,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    policy: LiquidationPolicy | None = None,
    coverage_on: str = "initial",
    progress: Callable[[str, int, int], None] | None = None,
    adv_fraction: float | None = None,
    adv_window: int = 30,
) -> CalibrationResult:
    """Find the least-capital value of ``param`` that meets ``target``.

    Parameters
    ----------
    panel : PricePanel
        Prices (the model may use all dates up to each t; the window below
        selects which dates are scored).
    model : str or callable
        A registered model name (``"fixed_haircut"``, ``"scenario_grid"``...)
        or a factory ``f(label=..., **params) -> MarginModel``.
    param : str
        Constructor parameter searched (``"haircut"``, ``"imf"``,
        ``"psr_floor"``, ``"confidence"``, ``"window"``...).
    target : Target or str
        A :class:`Target` or its kind (default value).
    per_asset : bool
        One value per asset, each asset on ``single_asset_book(asset, book)``
        over ``panel.select([asset])``; False: one joint value on ``book``
        (a :class:`Book`) over the whole panel.
    assets : sequence of str, optional
        Assets calibrated in per-asset mode (default: all of the panel's).
    book : Book or {"collateral", "long", "short", "long_short"}
        The per-asset book kind, or the joint book.
    fixed : mapping, optional
        Other constructor parameters, held fixed.
    tie : mapping, optional
        ``{other_param: ratio}``: set ``other_param = ratio x value`` (e.g.
        ``{"mmf": 0.6}`` when searching ``imf``). For ``fixed_haircut`` and
        ``param="imf"`` without an ``mmf``, ``{"mmf": 0.6}`` is the default
        (dYdX's 0.03 / 0.05).
    bounds : (float, float), optional
        Search range (default :data:`DEFAULT_BOUNDS` for known parameters).
    values : sequence of float, optional
        Discrete candidates (lookbacks, windows): least-capital feasible one.
    integer : bool
        Round the parameter to an integer before building the model.
    increasing : bool
        True when a larger value means more capital (default).
    grid : int
        Grid points of the monotonicity check, >= 3.
    xtol : float
        Bisection tolerance on the parameter, > 0.
    max_iter : int
        Bisection steps at most.
    mpor, min_history, start, end, policy, coverage_on
        As :func:`riskmodels.backtest.engine.run_models`; ``start``/``end``
        are dates (inclusive) of the scored window.
    progress : callable, optional
        ``progress(message, i, n)`` after each asset.
    adv_fraction : float, optional
        Size every account so that its largest holding is this fraction of the
        asset's ADV (module docstring "Size"); default: the book as given.
    adv_window : int
        Days of volume before the scored window in that ADV; default 30.
    """
    if not isinstance(target, Target):
        target = Target(str(target))
    if int(grid) != grid or grid < 3:
        raise ValueError(f"grid={grid!r} is outside its valid range: integers >= 3")
    if not (xtol > 0 and math.isfinite(xtol)):
        raise ValueError(f"xtol={xtol!r} is outside its valid range (0, inf)")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} is outside its valid range: integers >= 1")
    if int(mpor) != mpor or mpor < 1:
        raise ValueError(f"mpor={mpor!r} is outside its valid range: integers >= 1 (days)")
    if coverage_on not in ("initial", "maintenance"):
        raise ValueError(f"coverage_on={coverage_on!r} must be 'initial' or 'maintenance'")
    if values is not None:
        values = [float(v) for v in values]
        if len(values) < 1:
            raise ValueError("values must list at least one candidate")
    else:
        if bounds is None:
            if param not in DEFAULT_BOUNDS:
                raise ValueError(
                    f"no default bounds for param {param!r}: pass bounds=(lo, hi) or values=[...]; "
                    f"defaults exist for {sorted(DEFAULT_BOUNDS)}"
                )
            bounds = DEFAULT_BOUNDS[param]
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds={bounds!r} must be two finite numbers lo < hi")
        bounds = (lo, hi)
    fixed = dict(fixed or {})
    tie = dict(tie or {})
    if param in fixed or param in tie:
        raise ValueError(f"param {param!r} is searched: remove it from fixed/tie")
    if model == "fixed_haircut" and param == "imf" and "mmf" not in fixed and "mmf" not in tie:
        tie["mmf"] = 0.6
    factory = _factory(model)
    policy = policy or LiquidationPolicy()
    model_name = model if isinstance(model, str) else getattr(model, "__name__", "model")

    if per_asset:
        if isinstance(book, Book):
            raise ValueError("per_asset=True builds single-asset books: pass book as one of " f"{BOOK_KINDS}")
        jobs = [(a, panel.select([a]), single_asset_book(a, book)) for a in (assets or panel.assets)]
    else:
        if not isinstance(book, Book):
            raise ValueError("per_asset=False needs book=<a Book> (e.g. engine.build_book(cfg, panel.assets))")
        jobs = [("joint", panel, book.align(panel.assets))]

    if adv_fraction is not None:
        _warn_if_size_inert(policy, factory, fixed)
    rows, frames = [], []
    for k, (name, pan, bk) in enumerate(jobs):
        s = pan.date_index(start) if start is not None else 0
        e = pan.date_index(end, side="right") - 1 if end is not None else pan.n_dates - 1
        if s > e:
            raise ValueError(f"no dates between start={start} and end={end}")
        if adv_fraction is not None:
            from riskmodels.book_sizing import scale_to_adv

            bk = scale_to_adv(bk, pan, s, float(adv_fraction), int(adv_window))
        prob = _Problem(pan, bk, factory, param, fixed, tie, integer, target, int(mpor), int(min_history),
                        s, e, policy, coverage_on)
        row, frame = _search(prob, bounds=bounds or (0.0, 0.0), values=values, grid=int(grid), xtol=float(xtol),
                             increasing=increasing, max_iter=int(max_iter), asset=name)
        rows.append(row)
        frames.append(frame)
        if progress:
            progress(f"{name}: {param}={row.value:.6g}", k + 1, len(jobs))
    settings = {"per_asset": per_asset, "book": book if isinstance(book, str) else "custom", "mpor": mpor,
                "min_history": min_history, "start": None if start is None else str(start),
                "end": None if end is None else str(end), "coverage_on": coverage_on, "xtol": xtol,
                "grid": grid, "fixed": fixed, "tie": tie, "adv_fraction": adv_fraction, "adv_window": adv_window,
                "closeout": getattr(policy, "closeout", "flat")}
    return CalibrationResult(str(model_name), param, target, tuple(rows), pd.concat(frames, ignore_index=True),
                             settings)


def _warn_if_size_inert(policy: LiquidationPolicy, factory: ModelFactory, fixed: Mapping[str, Any]) -> None:
    """Warn when nothing in the run depends on the size of the accounts."""
    import warnings

    if getattr(policy, "closeout", "flat") == "impact":
        return
    try:
        m = factory(label="probe", **fixed)
    except Exception:  # the searched parameter may be required: cannot tell
        return
    if getattr(m, "name", "") != "concentration" and not getattr(m, "position_tiers", None) \
            and not getattr(m, "collateral_tiers", None):
        warnings.warn("adv_fraction is set but the close-out is flat and the model has no size term: the size of "
                      "the book cannot change the result (set [liquidation] closeout = \"impact\" or use a "
                      "concentration model)", stacklevel=3)
