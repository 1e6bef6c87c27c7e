"""Stress scenarios as data: named tables of per-asset moves, built from data up to a date.

A :class:`Scenario` is one row of per-asset simple returns over the stress
horizon (the margin period of risk, ``h`` days), plus a move of the book's
positive USD cash (a stablecoin depeg) and a mode:

* ``"directional"``: every account's USD exposure ``x_pa`` (collateral + perp
  delta) moves by ``m_a``: loss ``L_p = -sum_a x_pa m_a - c_p^+ m_cash``;
* ``"adverse"``: the magnitude ``|m_a|`` moves against each account's net
  exposure (its longs fall, its shorts rise): ``L_p = sum_a |x_pa| |m_a| -
  c_p^+ m_cash``, the "hedges break" correlation breakdown, a per-account bound.

:class:`ScenarioHistory` builds the library at any date index ``t`` of a panel
from rows ``<= t`` only (no look-ahead):

* **historical, crash days** -- for each day of the shipped crash list
  (:data:`riskmodels.cascade.replay.CRASH_DAYS`) on or before ``t``, the
  ``h``-day window containing it (window ``(e-h, e]`` with ``e - h < d <= e``
  and ``e <= t``) with the worst equal-weight market return, every asset's own
  ``h``-day return in that window, as it happened;
* **historical, worst windows** -- the ``n`` worst (most negative) and ``n``
  best (most positive: the shorts' stress) non-overlapping ``h``-day windows of
  the equal-weight market return up to ``t``, excluding windows overlapping a
  crash-day window already listed;
* **hypothetical, BTC beta** -- BTC moves ``s`` and every other asset
  ``beta_a s`` (linear, floored at -100%), ``beta_a`` the OLS slope of the
  asset's daily log return on BTC's over the ``beta_lookback`` days up to
  ``t`` (1.0 with fewer than ``beta_min_obs`` common observations);
* **hypothetical, stablecoin depeg** -- the universe has no stablecoin, so a
  depeg of ``d`` is a haircut of the book's positive USD cash by ``d``
  (``m_cash = -d``; negative cash, a USD loan, is kept at par: no gain is
  credited to the borrower), crypto prices unchanged in USD;
* **hypothetical, correlation breakdown** -- "all longs fall together"
  (every asset ``-b``), "majors up, alts down" and its mirror (BTC and ETH
  ``+b``, the others ``-b``), and "hedges break" (adverse mode, ``b``);
* **user** scenarios from TOML (:func:`user_scenarios`).

Historical windows where an asset had no price (not yet listed) give that
asset the window's equal-weight market move (a proxy, named in the rule).
Volatility shocks need options in the book; the Book has none yet, so none
are generated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from riskmodels.data.panel import PricePanel

MODES = ("directional", "adverse")
KINDS = ("historical", "hypothetical", "user")
MAJORS = ("BTC", "ETH")


@dataclass(frozen=True)
class Scenario:
    """One named stress scenario: per-asset simple returns over the horizon.

    Parameters
    ----------
    name : str
    kind : str
        ``"historical"``, ``"hypothetical"`` or ``"user"``.
    moves : mapping of str to float
        Simple return per asset (>= -1); assets not listed move ``default``.
    default : float
        Move of unlisted assets.
    cash : float
        Simple return of positive USD cash balances (a depeg is negative).
    mode : str
        ``"directional"`` or ``"adverse"`` (see the module docstring).
    rule : str
        How the scenario was built (stated beside every result).
    """

    name: str
    kind: str
    moves: Mapping[str, float] = field(default_factory=dict)
    default: float = 0.0
    cash: float = 0.0
    mode: str = "directional"
    rule: str = ""

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a scenario needs a non-empty name, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind={self.kind!r} must be one of {KINDS}")
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode={self.mode!r} must be one of {MODES}")
        for key, v in [*self.moves.items(), ("default", self.default), ("cash", self.cash)]:
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v < -1:
                raise ValueError(
                    f"{where}: move {key}={v!r} must be a finite number >= -1 (a simple return: -0.3 = -30%)"
                )
        object.__setattr__(self, "moves", {str(k): float(v) for k, v in self.moves.items()})

    def vector(self, assets: Sequence[str]) -> np.ndarray:
        """``(A,)`` moves in the order of ``assets``."""
        return np.array([self.moves.get(a, self.default) for a in assets], dtype=np.float64)


@dataclass(frozen=True)
class ScenarioSet:
    """Scenarios over one asset universe, as arrays for vectorised pricing."""

    assets: tuple[str, ...]
    scenarios: tuple[Scenario, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def __len__(self) -> int:
        return len(self.scenarios)

    @cached_property
    def moves(self) -> np.ndarray:
        """``(S, A)`` per-asset moves."""
        if not self.scenarios:
            return np.zeros((0, len(self.assets)))
        return np.vstack([s.vector(self.assets) for s in self.scenarios])

    @cached_property
    def cash(self) -> np.ndarray:
        return np.array([s.cash for s in self.scenarios], dtype=np.float64)

    @cached_property
    def adverse(self) -> np.ndarray:
        return np.array([s.mode == "adverse" for s in self.scenarios], dtype=bool)

    def to_frame(self) -> pd.DataFrame:
        """The library as a table: one row per scenario, its rule, cash move and per-asset moves."""
        head = pd.DataFrame(
            {
                "scenario": self.names,
                "kind": [s.kind for s in self.scenarios],
                "mode": [s.mode for s in self.scenarios],
                "rule": [s.rule for s in self.scenarios],
                "cash": self.cash,
            }
        )
        return pd.concat([head, pd.DataFrame(self.moves, columns=list(self.assets))], axis=1)

    def __add__(self, other: ScenarioSet) -> ScenarioSet:
        if other.assets != self.assets:
            raise ValueError("cannot join scenario sets over different asset universes")
        return ScenarioSet(self.assets, self.scenarios + other.scenarios)


# --------------------------------------------------------------------- history
def _rolling_beta(r: np.ndarray, b: int, lookback: int, min_obs: int) -> np.ndarray:
    """``(T, A)`` OLS slope of each column of ``r`` on column ``b`` over rows ``t-lookback+1..t``.

    ``beta = (n Sxy - Sx Sy) / (n Syy - Sy^2)`` over the pairs where both are
    finite (running sums, so row t uses rows <= t only); 1.0 where fewer than
    ``min_obs`` pairs or a zero variance.
    """
    y = r[:, b][:, None]
    ok = np.isfinite(r) & np.isfinite(y)
    x0 = np.where(ok, r, 0.0)
    y0 = np.where(ok, np.broadcast_to(y, r.shape), 0.0)

    def win(a: np.ndarray) -> np.ndarray:
        c = np.cumsum(np.vstack([np.zeros((1, a.shape[1])), a]), axis=0)
        lag = np.maximum(np.arange(1, len(a) + 1) - lookback, 0)
        return c[1:] - c[lag]

    n = win(ok.astype(np.float64))
    sx, sy, sxy, syy = win(x0), win(y0), win(x0 * y0), win(y0 * y0)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = n * syy - sy * sy
        beta = (n * sxy - sx * sy) / den
    good = (n >= min_obs) & (den > 1e-18 * np.maximum(n * n, 1.0)) & np.isfinite(beta)
    return np.where(good, beta, 1.0)


def _pick_windows(score: np.ndarray, n: int, h: int, blocked: np.ndarray) -> list[int]:
    """Indices of the ``n`` smallest finite ``score`` values, pairwise >= ``h`` apart, not ``blocked``."""
    cand = np.flatnonzero(np.isfinite(score) & ~blocked)
    order = cand[np.argsort(score[cand], kind="stable")]
    picked: list[int] = []
    for e in order:
        if len(picked) == n:
            break
        if all(abs(int(e) - p) >= h for p in picked):
            picked.append(int(e))
    return picked


@dataclass(frozen=True)
class LibrarySpec:
    """Which scenarios the library holds (the ``[stress]`` config keys of the same names)."""

    horizon: int = 2
    crash_days: bool = True
    worst_windows: int = 3
    btc_shocks: tuple[float, ...] = (-0.2, -0.35, -0.5)
    beta_lookback: int = 365
    beta_min_obs: int = 60
    depeg: tuple[float, ...] = (0.1, 0.3)
    breakdown: float = 0.25
    user: tuple[Scenario, ...] = ()

    def __post_init__(self) -> None:
        if int(self.horizon) < 1:
            raise ValueError(f"stress.horizon={self.horizon} must be >= 1 day")
        if int(self.worst_windows) < 0:
            raise ValueError(f"stress.worst_windows={self.worst_windows} must be >= 0")
        for s in self.btc_shocks:
            if not -1 <= s < 0:
                raise ValueError(f"stress.btc_shocks has {s}: each must be in [-1, 0) (a BTC fall, -0.3 = -30%)")
        for d in self.depeg:
            if not 0 < d <= 1:
                raise ValueError(f"stress.depeg has {d}: each must be in (0, 1] (0.1 = the stablecoin at 0.90)")
        if not 0 <= self.breakdown <= 1:
            raise ValueError(f"stress.breakdown={self.breakdown} must be in [0, 1]")
        if int(self.beta_lookback) < 2 or not 2 <= int(self.beta_min_obs) <= int(self.beta_lookback):
            raise ValueError(
                f"stress.beta_lookback={self.beta_lookback} and beta_min_obs={self.beta_min_obs} "
                "must satisfy 2 <= beta_min_obs <= beta_lookback"
            )


class ScenarioHistory:
    """The scenario library of a panel, available at any date index from data up to it.

    Precomputes the ``h``-day simple returns, the equal-weight market return
    and the rolling BTC betas once (all causal), so :meth:`at` is cheap for
    every date of a backtest.
    """

    def __init__(self, panel: PricePanel, spec: LibrarySpec | None = None) -> None:
        from riskmodels.cascade.replay import CRASH_DAYS

        self.panel = panel
        self.spec = spec or LibrarySpec()
        h = int(self.spec.horizon)
        self.h = h
        for s in self.spec.user:
            unknown = [a for a in s.moves if a not in panel.assets]
            if unknown:
                raise ValueError(
                    f"stress scenario {s.name!r} moves assets the data lacks: {unknown}; "
                    f"use assets of the universe {list(panel.assets)}"
                )
        self.ret_h = panel.returns(h, kind="simple")  # (T, A), row t uses closes t-h and t
        with np.errstate(invalid="ignore"):
            cnt = np.isfinite(self.ret_h).sum(axis=1)
            self.market = np.where(cnt > 0, np.nansum(self.ret_h, axis=1) / np.maximum(cnt, 1), np.nan)
        self.btc = panel.assets.index("BTC") if "BTC" in panel.assets else None
        if self.btc is not None:
            self.beta = _rolling_beta(panel.returns(1, kind="log"), self.btc, int(self.spec.beta_lookback),
                                      int(self.spec.beta_min_obs))
        else:
            self.beta = np.ones((panel.n_dates, panel.n_assets))
        self._cache: dict[tuple[int, str, str], Scenario] = {}
        self.crash_days = []
        if self.spec.crash_days:
            for day in CRASH_DAYS:
                ts = pd.Timestamp(day.date)
                d = panel.date_index(ts)
                if d < panel.n_dates and panel.dates[d] == ts:
                    self.crash_days.append((d, day))

    # ---------------------------------------------------------------- pieces
    def _window(self, e: int, name: str, rule: str) -> Scenario:
        key = (e, name, rule)
        if key not in self._cache:  # the same window recurs on every later date
            self._cache[key] = self._make_window(e, name, rule)
        return self._cache[key]

    def _make_window(self, e: int, name: str, rule: str) -> Scenario:
        row = self.ret_h[e]
        proxy = np.isfinite(self.market[e]) and not np.isfinite(row).all()
        mv = np.where(np.isfinite(row), row, self.market[e] if np.isfinite(self.market[e]) else 0.0)
        start = self.panel.dates[e - self.h].date()
        end = self.panel.dates[e].date()
        text = f"{rule}; {self.h}-day window {start} -> {end} close to close, each asset as it moved"
        if proxy:
            text += "; assets without a price then take the market move"
        return Scenario(name, "historical", dict(zip(self.panel.assets, mv.tolist(), strict=True)), rule=text)

    def historical(self, t: int) -> list[Scenario]:
        """Crash-day and worst/best-window scenarios from rows ``<= t``."""
        h = self.h
        out: list[Scenario] = []
        blocked = np.zeros(t + 1, dtype=bool)
        for d, day in self.crash_days:
            ends = np.arange(d, min(d + h - 1, t) + 1)
            ends = ends[np.isfinite(self.market[ends])] if len(ends) else ends
            if not len(ends):
                continue
            e = int(ends[np.argmin(self.market[ends])])
            out.append(self._window(e, f"crash {day.date} {day.label}",
                                    f"crash day {day.date} ({day.label}), worst-market window containing it"))
            blocked[max(e - h + 1, 0): min(e + h, t + 1)] = True
        n = int(self.spec.worst_windows)
        if n:
            m = self.market[: t + 1]
            for sign, tag in ((1.0, "worst"), (-1.0, "best")):
                for k, e in enumerate(_pick_windows(sign * m, n, h, blocked), 1):
                    word = "down" if sign > 0 else "up"
                    out.append(self._window(
                        e, f"{tag} window #{k} ({self.panel.dates[e].date()})",
                        f"#{k} most {word} equal-weight market {h}-day window in the data up to the date"))
        return out

    def hypothetical(self, t: int) -> list[Scenario]:
        """BTC-beta, depeg and correlation-breakdown scenarios at date index ``t``."""
        sp = self.spec
        assets = self.panel.assets
        out: list[Scenario] = []
        if self.btc is not None:
            beta = self.beta[t]
            for s in sp.btc_shocks:
                mv = np.maximum(beta * s, -1.0)
                mv[self.btc] = s
                out.append(Scenario(
                    f"BTC {s:+.0%} beta-scaled", "hypothetical", dict(zip(assets, mv.tolist(), strict=True)),
                    rule=(f"BTC {s:+.0%}, others beta x {s:+.0%} (floored at -100%), OLS beta of daily log "
                          f"returns on BTC over {sp.beta_lookback} days up to the date (1.0 below "
                          f"{sp.beta_min_obs} observations)")))
        for d in sp.depeg:
            out.append(Scenario(f"stablecoin depeg -{d:.0%}", "hypothetical", cash=-float(d),
                                rule=f"positive USD cash loses {d:.0%} (stablecoin at {1 - d:.2f}); loans at par"))
        b = float(sp.breakdown)
        if b > 0:
            out.append(Scenario(f"all assets {-b:+.0%}", "hypothetical", default=-b,
                                rule=f"correlation 1: every asset {-b:+.0%} together"))
            majors = {a: b for a in MAJORS if a in assets}
            if majors and len(majors) < len(assets):
                out.append(Scenario(f"majors {b:+.0%}, alts {-b:+.0%}", "hypothetical", majors, default=-b,
                                    rule=f"decorrelation: {'/'.join(majors)} {b:+.0%}, every other asset {-b:+.0%}"))
                out.append(Scenario(f"majors {-b:+.0%}, alts {b:+.0%}", "hypothetical",
                                    {a: -b for a in majors}, default=b,
                                    rule=f"decorrelation: {'/'.join(majors)} {-b:+.0%}, every other asset {b:+.0%}"))
            out.append(Scenario(f"hedges break {b:.0%}", "hypothetical", default=b, mode="adverse",
                                rule=f"every account's net longs fall {b:.0%} and net shorts rise {b:.0%}"))
        return out

    def at(self, t: int) -> ScenarioSet:
        """The whole library at date index ``t`` (rows ``<= t`` only)."""
        if not 0 <= t < self.panel.n_dates:
            raise IndexError(f"date index {t} is outside the panel's 0..{self.panel.n_dates - 1}")
        return ScenarioSet(self.panel.assets, tuple(self.historical(t) + self.hypothetical(t) + list(self.spec.user)))


# ------------------------------------------------------------------------ TOML
def user_scenarios(entries: Iterable[Mapping[str, Any]], where: str = "[[stress.scenarios]]") -> tuple[Scenario, ...]:
    """User scenarios from TOML tables::

        [[stress.scenarios]]
        name = "ETH unwind"
        moves = { ETH = -0.45, BTC = -0.2 }   # simple returns over the horizon
        default = -0.3                        # every other asset
        cash = 0.0                            # positive USD cash move (a depeg: -0.1)
        mode = "directional"                  # or "adverse"
    """
    known = {"name", "moves", "default", "cash", "mode", "rule"}
    out = []
    for k, e in enumerate(entries):
        if not isinstance(e, Mapping):
            raise ValueError(f"{where} entry {k} must be a table, got {e!r}")
        unknown = set(e) - known
        if unknown:
            raise ValueError(f"{where} entry {k} has unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
        if "name" not in e:
            raise ValueError(f"{where} entry {k} lacks `name`")
        moves = e.get("moves", {})
        if not isinstance(moves, Mapping):
            raise ValueError(f"{where} {e['name']!r}: moves must be a table like {{ BTC = -0.3 }}, got {moves!r}")
        out.append(Scenario(str(e["name"]), "user", dict(moves), e.get("default", 0.0), e.get("cash", 0.0),
                            e.get("mode", "directional"), str(e.get("rule", "user scenario (config)"))))
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{where}: scenario names must be unique, repeated: {dup}")
    return tuple(out)
