"""Stressed loss beyond margin, per account and per group, and Cover-1 / Cover-2.

For account ``p`` with USD exposure ``x_p`` (collateral + perp delta, per
asset), positive cash ``c_p^+`` and margin held ``M_p`` (the model's initial
margin by default, the CCP convention of the coverage backtest), the loss
under scenario ``s`` (see :mod:`riskmodels.stress.scenarios`) is::

    directional:  L_ps = -sum_a x_pa m_sa - c_p^+ m_s,cash
    adverse:      L_ps =  sum_a |x_pa| |m_sa| - c_p^+ m_s,cash

and the loss beyond margin ``U_ps = max(L_ps - M_p, 0)``. A group ``g`` of
related accounts (the Book's ``group`` column) loses ``U_gs = sum_{p in g}
U_ps``: a surplus in one account does not offset another's deficit (separate
accounts are separate legal claims; PFMI counts a participant "and its
affiliates" together).

**Cover-N** (PFMI Principle 4, CPSS-IOSCO 2012 KC4; the N = 2 standard for
systemically important CCPs, MIR 4.6.4): under each scenario, the sum of the
``N`` largest group losses beyond margin; Cover-N is the largest such sum over
the scenarios, reported with the scenario and the groups that set it.

Reverse stress (:func:`reverse_stress`): the smallest uniform move ``x`` (all
assets ``-x``, or ``+x``) or BTC move (other assets ``beta_a`` times it) that
makes a measure (``cover1``, ``cover2`` or ``total``) exceed the resources.
Every ``L_ps`` is linear in ``x`` (on the searched range no move reaches
-100%, so no floor binds), hence ``U_ps = max(k_p x - M_p, 0)`` is
non-decreasing in ``x`` and so are the group sums, their top-N sums and the
total: bisection finds the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodels.stress.scenarios import ScenarioSet

MEASURES = ("cover1", "cover2", "total")


def scenario_losses(exposure: np.ndarray, cash: np.ndarray, scenarios: ScenarioSet) -> np.ndarray:
    """``(P, S)`` stressed loss (positive = loss), USD.

    Parameters
    ----------
    exposure : numpy.ndarray
        ``(P, A)`` USD delta per asset (``Book.exposure``).
    cash : numpy.ndarray
        ``(P,)`` USD cash; only positive balances take the cash move.
    scenarios : ScenarioSet
    """
    m = scenarios.moves  # (S, A)
    adv = scenarios.adverse
    x = np.asarray(exposure, dtype=np.float64)
    loss = -(x @ m.T)
    if adv.any():
        loss[:, adv] = np.abs(x) @ np.abs(m[adv]).T
    loss -= np.maximum(np.asarray(cash, dtype=np.float64), 0.0)[:, None] * scenarios.cash[None, :]
    return loss


def group_codes(groups: tuple[str, ...] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (P,), labels (G,))`` of the group labels, in order of first appearance."""
    labels, first, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_index=True,
                                     return_inverse=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[codes], labels[order]


class GroupIndex:
    """Accounts -> groups, for fast per-group sums (one gather and one ``reduceat``)."""

    def __init__(self, groups: tuple[str, ...] | np.ndarray) -> None:
        self.codes, self.labels = group_codes(groups)
        self.order = np.argsort(self.codes, kind="stable")
        sorted_codes = self.codes[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(sorted_codes) \
            else np.zeros(0, dtype=np.intp)
        self.identity = len(self.labels) == len(self.codes) and bool((self.codes == np.arange(len(self.codes))).all())

    def __len__(self) -> int:
        return len(self.labels)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """``(G, ...)`` sums of ``values (P, ...)`` per group (``values`` itself when every account is its own group)."""
        if self.identity:
            return values
        if not len(self.order):
            return np.zeros((0, *values.shape[1:]))
        return np.add.reduceat(values[self.order], self.starts, axis=0)


def group_sum(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``(G, S)`` column sums of ``values (P, S)`` per group code (reference for :class:`GroupIndex`)."""
    out = np.zeros((n_groups, values.shape[1]))
    np.add.at(out, codes, values)
    return out


def top2(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``values (G, S)``: the largest and the sum of the two largest (no full sort)."""
    g = values.shape[0]
    if g == 0:
        z = np.zeros(values.shape[1])
        return z, z
    if g == 1:
        return values[0], values[0]
    cols = np.arange(values.shape[1])
    i1 = np.argmax(values, axis=0)  # row reductions run along contiguous memory, unlike a partition on axis 0
    m1 = values[i1, cols]
    rest = values.copy()
    rest[i1, cols] = -np.inf
    return m1, m1 + rest.max(axis=0)


def top_n_sum(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``values (G, S)``: the sum of the ``n`` largest, and their row indices ``(n, S)``."""
    g = values.shape[0]
    k = min(n, g)
    if k == 0:
        return np.zeros(values.shape[1]), np.zeros((0, values.shape[1]), dtype=np.intp)
    idx = np.argsort(-values, axis=0, kind="stable")[:k]
    return np.take_along_axis(values, idx, axis=0).sum(axis=0), idx


@dataclass(frozen=True, eq=False)
class StressResult:
    """Stressed losses of one book at one date under one scenario set.

    Attributes
    ----------
    scenarios : ScenarioSet
    account_ids, groups : tuple of str
    loss : numpy.ndarray
        ``(P, S)`` stressed loss, USD.
    margin : numpy.ndarray
        ``(P,)`` margin held (NaN = not priced; such accounts are left out).
    uncovered : numpy.ndarray
        ``(P, S)`` loss beyond margin, ``max(L - M, 0)`` (0 where not priced).
    group_labels : numpy.ndarray
        ``(G,)``; ``group_uncovered`` is ``(G, S)``.
    """

    scenarios: ScenarioSet
    account_ids: tuple[str, ...]
    groups: tuple[str, ...]
    loss: np.ndarray
    margin: np.ndarray
    uncovered: np.ndarray
    group_labels: np.ndarray
    group_uncovered: np.ndarray
    margin_basis: str = "initial"

    def cover(self, n: int) -> tuple[float, str, tuple[str, ...]]:
        """Cover-N: ``(amount, scenario name, groups)`` of the worst scenario's N largest groups."""
        if len(self.scenarios) == 0:
            return 0.0, "", ()
        tot, idx = top_n_sum(self.group_uncovered, n)
        s = int(np.argmax(tot))
        grp = tuple(str(self.group_labels[i]) for i in idx[:, s] if self.group_uncovered[i, s] > 0)
        return float(tot[s]), self.scenarios.names[s], grp

    @property
    def cover1(self) -> float:
        return self.cover(1)[0]

    @property
    def cover2(self) -> float:
        return self.cover(2)[0]

    def table(self) -> pd.DataFrame:
        """One row per scenario: its rule, book loss, loss beyond margin, accounts short, Cover-1/2.

        ``net_loss`` sums the priced accounts' losses (gains offset them),
        ``gross_loss`` only the losing accounts'; ``loss_beyond_margin`` is
        the sum of ``max(L - M, 0)``.
        """
        s_list = self.scenarios.scenarios
        priced_loss = np.where(np.isfinite(self.margin)[:, None], self.loss, 0.0)
        c1, i1 = top_n_sum(self.group_uncovered, 1)
        c2, _ = top_n_sum(self.group_uncovered, 2)
        top = [str(self.group_labels[i]) if self.group_uncovered[i, k] > 0 else ""
               for k, i in enumerate(i1[0])] if len(i1) else [""] * len(s_list)
        return pd.DataFrame(
            {
                "scenario": self.scenarios.names,
                "kind": [s.kind for s in s_list],
                "mode": [s.mode for s in s_list],
                "net_loss": priced_loss.sum(axis=0),
                "gross_loss": np.maximum(priced_loss, 0.0).sum(axis=0),
                "loss_beyond_margin": self.uncovered.sum(axis=0),
                "accounts_beyond_margin": (self.uncovered > 0).sum(axis=0),
                "groups_beyond_margin": (self.group_uncovered > 0).sum(axis=0),
                "cover1": c1,
                "cover2": c2,
                "largest_group": top,
                "margin_basis": self.margin_basis,
                "rule": [s.rule for s in s_list],
            }
        )

    def account_table(self) -> pd.DataFrame:
        """Per account: group, margin, worst loss beyond margin and the scenario that sets it."""
        if len(self.scenarios) == 0:
            worst = np.zeros(len(self.account_ids))
            which = [""] * len(self.account_ids)
        else:
            k = np.argmax(self.uncovered, axis=1)
            worst = self.uncovered[np.arange(len(k)), k]
            which = np.where(worst > 0, np.asarray(self.scenarios.names, dtype=object)[k], "")
        return pd.DataFrame({"account": self.account_ids, "group": self.groups, "margin": self.margin,
                             "worst_loss_beyond_margin": worst, "worst_scenario": which})


def stress_book(
    exposure: np.ndarray,
    cash: np.ndarray,
    margin: np.ndarray,
    scenarios: ScenarioSet,
    account_ids: tuple[str, ...],
    groups: tuple[str, ...],
    margin_basis: str = "initial",
    *,
    loss: np.ndarray | None = None,
    index: GroupIndex | None = None,
) -> StressResult:
    """Losses, losses beyond margin and group sums of one book under ``scenarios``.

    Accounts whose ``margin`` is NaN (not priced: an asset without history)
    contribute nothing. ``loss`` (:func:`scenario_losses`) and ``index``
    (:class:`GroupIndex` of ``groups``) may be passed when several models
    share them.
    """
    margin = np.asarray(margin, dtype=np.float64)
    loss = scenario_losses(exposure, cash, scenarios) if loss is None else loss
    unc = beyond_margin(loss, margin)
    gi = GroupIndex(groups) if index is None else index
    return StressResult(scenarios, tuple(account_ids), tuple(groups), loss, margin, unc, gi.labels,
                        gi.sum(unc), margin_basis)


def beyond_margin(loss: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """``(P, S)`` ``max(L - M, 0)``, 0 for accounts whose margin is NaN (not priced)."""
    margin = np.asarray(margin, dtype=np.float64)
    priced = np.isfinite(margin)
    return np.where(priced[:, None], np.maximum(loss - np.where(priced, margin, 0.0)[:, None], 0.0), 0.0)


# ------------------------------------------------------------------ reverse
def _measure(unc: np.ndarray, codes: np.ndarray, n_groups: int, measure: str) -> float:
    if measure == "total":
        return float(unc.sum())
    g = np.zeros(n_groups)
    np.add.at(g, codes, unc)
    n = 1 if measure == "cover1" else 2
    return float(np.sort(g)[::-1][:n].sum())


@dataclass(frozen=True)
class ReverseStress:
    """The smallest move of one family that exhausts the resources (None = none in range)."""

    family: str
    measure: str
    resources: float
    move: float | None  # signed move of the driver (all assets, or BTC); None if none in range
    bound: float  # the largest move searched
    value_at_bound: float

    def to_dict(self) -> dict[str, object]:
        return {"family": self.family, "measure": self.measure, "resources": self.resources, "move": self.move,
                "bound": self.bound, "measure_at_bound": self.value_at_bound}


def reverse_stress(
    exposure: np.ndarray,
    margin: np.ndarray,
    groups: tuple[str, ...],
    resources: float,
    *,
    direction: np.ndarray | None = None,
    measure: str = "cover2",
    bound: float = 1.0,
    tol: float = 1e-6,
    family: str = "uniform down",
) -> ReverseStress:
    """Smallest ``x`` in ``(0, bound]`` with ``measure(x) > resources`` for the move ``m_a = x d_a``.

    ``direction`` ``d`` is ``(A,)`` (default all -1: every asset falls ``x``);
    a beta-scaled BTC fall is ``d = -beta`` with ``bound <= 1 / max(beta)``
    so no asset falls below -100%. Bisection on a non-decreasing function
    (module docstring) to absolute tolerance ``tol``.
    """
    if measure not in MEASURES:
        raise ValueError(f"stress.reverse_measure={measure!r} must be one of {MEASURES}")
    if not (np.isfinite(resources) and resources >= 0):
        raise ValueError(f"stress resources={resources} must be a finite amount >= 0 USD")
    x = np.asarray(exposure, dtype=np.float64)
    d = -np.ones(x.shape[1]) if direction is None else np.asarray(direction, dtype=np.float64)
    margin = np.asarray(margin, dtype=np.float64)
    priced = np.isfinite(margin)
    k = np.where(priced, -(x @ d), 0.0)  # loss per unit of the move
    m0 = np.where(priced, margin, 0.0)
    codes, labels = group_codes(groups)

    def f(s: float) -> float:
        return _measure(np.where(priced, np.maximum(k * s - m0, 0.0), 0.0), codes, len(labels), measure)

    top = f(bound)
    if top <= resources:
        return ReverseStress(family, measure, float(resources), None, float(bound), top)
    lo, hi = 0.0, float(bound)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if f(mid) > resources:
            hi = mid
        else:
            lo = mid
    return ReverseStress(family, measure, float(resources), hi, float(bound), top)


def reverse_table(
    exposure: np.ndarray,
    margin: np.ndarray,
    groups: tuple[str, ...],
    resources: float,
    *,
    beta: np.ndarray | None = None,
    btc: int | None = None,
    measure: str = "cover2",
    up_bound: float = 3.0,
) -> pd.DataFrame:
    """Reverse stress for the uniform fall, the uniform rise and the beta-scaled BTC fall.

    ``move`` is the signed driver move (-0.23 = every asset, or BTC, -23%).
    Cash moves only in a depeg, so it plays no part here.
    """
    A = np.asarray(exposure).shape[1]
    rows = []
    r = reverse_stress(exposure, margin, groups, resources, measure=measure, family="all assets fall")
    rows.append((r, -1.0))
    r = reverse_stress(exposure, margin, groups, resources, direction=np.ones(A), measure=measure,
                       bound=up_bound, family="all assets rise")
    rows.append((r, 1.0))
    if beta is not None and btc is not None:
        b = np.asarray(beta, dtype=np.float64).copy()
        b[btc] = 1.0
        bmax = max(float(np.max(b)), 1.0)
        r = reverse_stress(exposure, margin, groups, resources, direction=-b, measure=measure,
                           bound=1.0 / bmax, family="BTC falls, others beta-scaled")
        rows.append((r, -1.0))
    return pd.DataFrame(
        [{**r.to_dict(), "move": None if r.move is None else sign * r.move, "bound": sign * r.bound}
         for r, sign in rows]
    )
