"""The margin-model contract, the registry and parameter helpers.

Contract
--------
A :class:`MarginModel` holds parameters only (validated in ``__init__`` with
errors that name the parameter and its valid range). ``fit(panel)`` returns a
:class:`FittedMargin` that precomputes whatever per-date state the method needs
(volatilities, scan ranges, scenario sets) **using for date t only data up to
and including t's close**. The fitted object answers one vectorised question::

    fitted.requirement(t, collateral, positions) -> Requirement(initial, maintenance)

for ``N`` accounts at date index ``t``: ``collateral`` and ``positions`` are
``(N, A)`` USD amounts valued at t's close (collateral >= 0, positions signed
perp notional), the answer two ``(N,)`` arrays in USD, loss positive, >= 0.
Cash (the USD stablecoin) carries no risk and is never passed.

``fitted.path(book)`` gives the whole ``(T, P)`` margin path of a constant
-notional book; the default loops over dates (vectorised over accounts) and
methods override it where a faster route exists (one matrix product for
haircuts, one P&L series per account for historical VaR).

Registry
--------
``riskmodels.margin.get("fixed_haircut", imf=0.1)`` builds a model by name; an
unknown name raises with the list of valid names. Third-party models register
with :func:`register` (a class decorator) or through the
``riskmodels.margin_models`` entry-point group.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel
from riskmodels.instruments.options import OptionState
from riskmodels.portfolio import Book


class Requirement(NamedTuple):
    """Initial and maintenance margin, USD, one value per account."""

    initial: np.ndarray
    maintenance: np.ndarray


@dataclass(frozen=True, eq=False)
class MarginPath:
    """Margin of a constant-notional book on every date.

    ``initial`` and ``maintenance`` are ``(T, P)`` USD arrays; NaN where the
    account holds an asset without enough history (``eligible`` False). Row
    ``i`` is ``dates[i]``, the panel's date index ``offset + i``: a fitted
    model's ``path()`` covers the whole panel (``offset = 0``); the backtest
    keeps only its evaluation window (:meth:`window`), which at 10,000
    accounts saves a third of the memory (the fit history before the window
    is never priced).
    """

    model: str
    dates: pd.DatetimeIndex
    account_ids: tuple[str, ...]
    initial: np.ndarray
    maintenance: np.ndarray
    eligible: np.ndarray
    offset: int = 0

    def window(self, start: int, end: int) -> MarginPath:
        """The rows of panel date indices ``start..end`` (inclusive), as copies."""
        a, b = start - self.offset, end + 1 - self.offset
        if not 0 <= a <= b <= len(self.dates):
            raise ValueError(
                f"window {start}..{end} is outside this path's date indices "
                f"{self.offset}..{self.offset + len(self.dates) - 1}"
            )

        def cut(x: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(x[a:b])

        return MarginPath(self.model, self.dates[a:b], self.account_ids, cut(self.initial),
                          cut(self.maintenance), cut(self.eligible), start)

    def rows(self, start: int, end: int) -> slice:
        """The row slice of panel date indices ``start..end`` (inclusive)."""
        return slice(start - self.offset, end + 1 - self.offset)

    def stored(self) -> MarginPath:
        """The same path with its margins in float32, as a backtest result keeps it.

        Seven significant digits (a $1,000,000 margin to about $0.06): enough
        for every statistic and report, half the memory (0.1 GB per array at
        10,000 accounts). Decisions that compare margins with losses or
        equity (coverage exceptions, liquidations) are made in float64 first.
        """
        return replace(self, initial=self.initial.astype(np.float32), maintenance=self.maintenance.astype(np.float32))

    def frame(self, which: str = "initial") -> pd.DataFrame:
        arr = getattr(self, which)
        return pd.DataFrame(arr, index=self.dates, columns=list(self.account_ids))

    def long_frame(self) -> pd.DataFrame:
        """Tidy table: date, account, model, initial, maintenance (eligible rows only)."""
        t, p = np.nonzero(self.eligible)
        return pd.DataFrame(
            {
                "date": self.dates[t],
                "account": np.asarray(self.account_ids, dtype=object)[p],
                "model": self.model,
                "initial": self.initial[t, p],
                "maintenance": self.maintenance[t, p],
            }
        )


class FittedMargin(ABC):
    """A margin model fitted to a panel: answers requirements for any date."""

    #: True when requirement(t, k*c, k*x) == k*requirement(t, c, x) for k >= 0.
    homogeneous: ClassVar[bool] = True

    def __init__(self, model: MarginModel, panel: PricePanel) -> None:
        self.model = model
        self.panel = panel

    @abstractmethod
    def requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """Cross-margined IM and MM of ``N`` accounts at date index ``t``.

        Parameters
        ----------
        t : int
            Date index into ``self.panel.dates``; only data up to t may be used.
        collateral, positions : numpy.ndarray
            ``(N, A)`` USD amounts at t's close.
        """

    #: True when :meth:`option_requirement` is implemented (full revaluation of options)
    supports_options: ClassVar[bool] = False

    def option_requirement(
        self, t: int, collateral: np.ndarray, positions: np.ndarray, options: OptionState
    ) -> Requirement:
        """Cross-margined IM and MM of ``N`` accounts that also hold options.

        ``collateral`` and ``positions`` are as in :meth:`requirement`;
        ``options`` carries the accounts' option positions at date ``t``
        (``options.table.account`` indexes the ``N`` rows). Methods that
        support options revalue every position under their scenarios (full
        revaluation) and set ``supports_options = True``.
        """
        from riskmodels.errors import UserError

        raise UserError(
            f"margin model {self.model.label!r} ({type(self.model).__name__}) does not price options; "
            "remove the options from the book or choose a model that supports them "
            "(scenario_grid, deribit_pm, historical_var, filtered_hs, garch, fixed_haircut)"
        )

    # ------------------------------------------------------------ isolated
    def isolated_requirement(self, t: int, collateral: np.ndarray, positions: np.ndarray) -> Requirement:
        """Sum of each holding's stand-alone requirement (isolated margin).

        For homogeneous models this prices three unit portfolios per asset
        (1 USD of collateral, +1 and -1 USD of perp) and scales them, so the
        cost is independent of the number of accounts.
        """
        collateral = np.atleast_2d(collateral)
        positions = np.atleast_2d(positions)
        A = collateral.shape[1]
        if self.homogeneous:
            eye = np.eye(A)
            zero = np.zeros((A, A))
            uc = self.requirement(t, eye, zero)
            up = self.requirement(t, zero, eye)
            un = self.requirement(t, zero, -eye)
            long = np.maximum(positions, 0.0)
            short = np.maximum(-positions, 0.0)

            def total(u_c: np.ndarray, u_p: np.ndarray, u_n: np.ndarray) -> np.ndarray:
                # 0 x NaN must stay 0: an asset without a requirement yet only
                # poisons the accounts that hold it
                out = np.zeros(collateral.shape[0])
                for amt, unit in ((collateral, u_c), (long, u_p), (short, u_n)):
                    out += np.where(amt != 0, amt * unit, 0.0).sum(axis=1)
                return out

            return Requirement(
                total(uc.initial, up.initial, un.initial),
                total(uc.maintenance, up.maintenance, un.maintenance),
            )
        N = collateral.shape[0]
        rows_c = np.zeros((N * A, A))
        rows_p = np.zeros((N * A, A))
        idx = np.arange(N * A)
        rows_c[idx, idx % A] = collateral.ravel()
        rows_p[idx, idx % A] = positions.ravel()
        zero = np.zeros_like(rows_c)
        rc = self.requirement(t, rows_c, zero)
        rp = self.requirement(t, zero, rows_p)
        return Requirement(
            (rc.initial + rp.initial).reshape(N, A).sum(axis=1),
            (rc.maintenance + rp.maintenance).reshape(N, A).sum(axis=1),
        )

    def account_requirement(
        self, t: int, collateral: np.ndarray, positions: np.ndarray, isolated: np.ndarray | None = None
    ) -> Requirement:
        """Cross requirement, or isolated where ``isolated`` is True."""
        if isolated is not None and np.size(isolated) and np.all(isolated):
            # every account isolated (the engine's netting path): the cross requirement is not needed
            return self.isolated_requirement(t, collateral, positions)
        req = self.requirement(t, collateral, positions)
        if isolated is None or not np.any(isolated):
            return req
        iso = np.asarray(isolated, dtype=bool)
        ireq = self.isolated_requirement(t, collateral[iso], positions[iso])
        im = req.initial.copy()
        mm = req.maintenance.copy()
        im[iso] = ireq.initial
        mm[iso] = ireq.maintenance
        return Requirement(im, mm)

    # ----------------------------------------------------------------- path
    def path(self, book: Book, eligible: np.ndarray | None = None) -> MarginPath:
        """Margin of ``book`` held at constant USD amounts on every date.

        ``eligible`` is the ``(T, P)`` mask of (date, account) pairs to price
        (default: all accounts whose held assets are all live); other cells are
        NaN. The default implementation loops over dates, vectorised over
        accounts; subclasses override it with faster equivalents.
        """
        book = book.align(self.panel.assets)
        if eligible is None:
            eligible = account_eligibility(self.panel.live, book)
        T, P = eligible.shape
        im = np.full((T, P), np.nan)
        mm = np.full((T, P), np.nan)
        for t in np.flatnonzero(eligible.any(axis=1)):
            rows = eligible[t]
            req = self.account_requirement(
                int(t), book.collateral[rows], book.positions[rows], book.isolated[rows]
            )
            im[t, rows] = req.initial
            mm[t, rows] = req.maintenance
        return MarginPath(self.model.label, self.panel.dates, book.account_ids, im, mm, eligible)


def combine_units(
    collateral: np.ndarray,
    positions: np.ndarray,
    up: np.ndarray,
    un: np.ndarray,
    uc: np.ndarray | None = None,
) -> np.ndarray:
    """Isolated margin from unit requirements: ``(N, A)`` holdings, ``(T, A)`` units -> ``(T, N)``.

    For a positively homogeneous model an isolated account's margin is the
    sum of its holdings' stand-alone requirements::

        M_n(t) = sum_a c_na Uc_a(t) + max(p_na, 0) U+_a(t) + max(-p_na, 0) U-_a(t)

    with ``Uc``, ``U+``, ``U-`` the requirements of 1 USD of collateral, +1
    and -1 USD of perp in asset ``a`` at date ``t``. ``uc=None`` means the
    collateral unit is ``U+`` (methods that price the net exposure
    ``c + p``): then ``(c + p^+) U+`` is one product. Computed as two or three
    ``(T, A) @ (A, N)`` products; NaN where a *held* asset's unit is not
    finite (a non-held NaN unit does not propagate: ``0 x NaN`` stays 0).

    Parameters
    ----------
    collateral, positions : numpy.ndarray
        ``(N, A)`` USD amounts (collateral >= 0, positions signed).
    up, un : numpy.ndarray
        ``(T, A)`` unit requirements of +1 / -1 USD per asset.
    uc : numpy.ndarray, optional
        ``(T, A)`` unit requirements of 1 USD of collateral; default ``up``.
    """
    long = np.maximum(positions, 0.0)
    short = np.maximum(-positions, 0.0)
    if np.isfinite(up).all() and np.isfinite(un).all() and (uc is None or np.isfinite(uc).all()):
        # every unit priced (the common case, and the simulation's one row per date): the same products without
        # the NaN bookkeeping below, which then changes nothing
        if uc is None:
            return up @ (collateral + long).T + un @ short.T
        return uc @ collateral.T + up @ long.T + un @ short.T
    if uc is None:
        longish = collateral + long
        out = np.nan_to_num(up) @ longish.T + np.nan_to_num(un) @ short.T
        bad = (~np.isfinite(up)).astype(np.float64) @ (longish > 0).T + (~np.isfinite(un)).astype(
            np.float64
        ) @ (short > 0).T
    else:
        out = np.nan_to_num(uc) @ collateral.T + np.nan_to_num(up) @ long.T + np.nan_to_num(un) @ short.T
        bad = (
            (~np.isfinite(uc)).astype(np.float64) @ (collateral != 0).T
            + (~np.isfinite(up)).astype(np.float64) @ (long > 0).T
            + (~np.isfinite(un)).astype(np.float64) @ (short > 0).T
        )
    return np.where(bad > 0, np.nan, out)


def account_eligibility(asset_ok: np.ndarray, book: Book) -> np.ndarray:
    """``(T, P)`` bool: every asset the account holds is ok (``asset_ok`` is ``(T, A)``).

    The count of held assets not ok is a float64 (BLAS) product: counts up
    to ``A`` are exact in a double, and numpy's integer matmul has no BLAS
    (38 ms against 3 ms for 4,100 dates x 18 assets x 1,000 accounts).
    """
    held = book.held().astype(np.float64)  # (P, A)
    bad = (~np.asarray(asset_ok, dtype=bool)).astype(np.float64) @ held.T  # (T, P) count of held assets not ok
    return bad == 0


class MarginModel(ABC):
    """Base class of margin methods: parameters in, :class:`FittedMargin` out.

    Subclasses set ``name`` (the registry key), validate their parameters in
    ``__init__`` and implement :meth:`fit`. ``min_history`` is the number of
    daily returns an asset needs before the method can margin it.
    """

    name: ClassVar[str] = ""
    #: a one-line description shown in reports
    summary: ClassVar[str] = ""
    #: rough run time relative to FixedHaircut; the engine starts costly models first
    relative_cost: ClassVar[float] = 1.0
    #: the fit is cheap next to the per-account work: with several processes the
    #: engine fits the model in each and splits the accounts between them
    split_accounts: ClassVar[bool] = True
    #: the method's own rules set the maintenance margin (haircut IMF/MMF); risk
    #: models (False) run under the backtest's declared MM / IM ratio
    own_maintenance: ClassVar[bool] = False

    def __init__(self, *, label: str | None = None) -> None:
        self.label = label or self.name

    @property
    def min_history(self) -> int:
        return 0

    @property
    def required_history(self) -> int:
        """Daily price rows an asset needs *before* the first day the method margins it.

        ``min_history`` daily returns need ``min_history + 1`` prices, and margin
        for day ``t`` is set at the close of ``t - 1``; callers that load a slice of
        the data (e.g. ``riskmodels cascade``) start that many rows before their
        first day. A method whose state warms up beyond ``min_history`` overrides it.
        """
        return int(self.min_history) + 1

    @abstractmethod
    def fit(self, panel: PricePanel) -> FittedMargin:
        """Precompute the per-date state on ``panel`` (no look-ahead)."""

    def params(self) -> dict[str, Any]:
        """Constructor parameters and their values (for reports and configs)."""
        sig = inspect.signature(type(self).__init__)
        out = {}
        for k in sig.parameters:
            if k in ("self", "label") or sig.parameters[k].kind in (
                inspect.Parameter.VAR_KEYWORD,
                inspect.Parameter.VAR_POSITIONAL,
            ):
                continue
            v = getattr(self, k, getattr(self, "_" + k, None))
            if isinstance(v, np.ndarray):
                v = v.tolist()
            out[k] = v
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------- registry
M = TypeVar("M", bound=type[MarginModel])
_REGISTRY: dict[str, type[MarginModel]] = {}
_ENTRY_POINTS_LOADED = False


def register(cls: M | None = None, *, name: str | None = None) -> M | Callable[[M], M]:
    """Register a :class:`MarginModel` subclass under ``name`` (default ``cls.name``).

    Usable as ``@register`` or ``register(MyModel)`` or ``@register(name="x")``.
    """

    def deco(c: M) -> M:
        if not (isinstance(c, type) and issubclass(c, MarginModel)):
            raise TypeError(f"register() takes a MarginModel subclass, got {c!r}")
        key = name or c.name
        if not key:
            raise ValueError(f"{c.__name__} has no `name`: set the class attribute or pass name=")
        if key in _REGISTRY and _REGISTRY[key] is not c:
            raise ValueError(f"a margin model named {key!r} is already registered ({_REGISTRY[key].__name__})")
        _REGISTRY[key] = c
        return c

    return deco(cls) if cls is not None else deco


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group="riskmodels.margin_models"):
        cls = ep.load()
        if ep.name not in _REGISTRY:
            register(cls, name=ep.name)


def available() -> list[str]:
    """Names of all registered margin models."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get(name: str, **params: Any) -> MarginModel:
    """Build the registered model ``name`` with ``params``."""
    _load_entry_points()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown margin model {name!r}; valid names: {', '.join(available())}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        sig = inspect.signature(cls.__init__)
        valid = [k for k in sig.parameters if k != "self"]
        raise TypeError(f"{name}: {exc}; valid parameters: {valid}") from None


# ------------------------------------------------------- parameter helpers
def check_range(
    name: str, value: float, lo: float = -np.inf, hi: float = np.inf, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    """Return ``float(value)`` or raise naming the parameter and its valid range."""
    v = float(value)
    ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok or np.isnan(v):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name}={value!r} is outside its valid range {left}{lo}, {hi}{right}")
    return v


def per_asset(
    name: str,
    value: float | Mapping[str, float] | Sequence[float] | np.ndarray,
    assets: Sequence[str],
    lo: float = -np.inf,
    hi: float = np.inf,
) -> np.ndarray:
    """Broadcast a parameter to one value per asset.

    Accepts a scalar, a mapping ``{asset: value}`` with an optional
    ``"default"`` key, or a sequence of length ``A``. A mapping without a
    default that misses an asset raises naming the asset.
    """
    A = len(assets)
    if isinstance(value, Mapping):
        default = value.get("default")
        out = np.empty(A)
        for j, a in enumerate(assets):
            if a in value:
                out[j] = float(value[a])
            elif default is not None:
                out[j] = float(default)
            else:
                raise KeyError(f"{name} has no value for asset {a} and no 'default'")
    else:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            out = np.full(A, float(arr))
        elif arr.shape == (A,):
            out = arr.copy()
        else:
            raise ValueError(f"{name} must be a scalar, a mapping or {A} values, got shape {arr.shape}")
    for j, v in enumerate(out):
        if not (lo <= v <= hi) or np.isnan(v):
            raise ValueError(f"{name}[{assets[j]}]={v} is outside its valid range [{lo}, {hi}]")
    return out


def params_of(obj: Any) -> dict[str, Any]:
    """Dataclass fields as a dict (helper for models written as dataclasses)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
