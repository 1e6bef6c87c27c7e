"""The sparse variance-covariance path kernel against the dense formula (margin/_garch_path.py).

Reference: the parametric (variance-covariance) VaR of a linear book,
``sqrt(v' R v)`` with ``v_a = x_a sigma_a q_a`` (RiskMetrics Technical
Document, 4th ed., 1996, section 6.3), written here densely with numpy.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodels.margin._garch_path import cross_path


def _dense(x: np.ndarray, sigma: np.ndarray, qp: np.ndarray, qn: np.ndarray, corr: np.ndarray) -> np.ndarray:
    T = sigma.shape[0]
    out = np.empty((T, x.shape[0]))
    for t in range(T):
        q = np.where(x > 0, qp[t], qn[t])
        v = np.where(x != 0, x * sigma[t] * q, 0.0)
        out[t] = np.sqrt(np.maximum(np.einsum("pa,ab,pb->p", v, corr[t], v), 0.0))
    return out


def _inputs(seed: int, P: int, A: int, T: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((P, A)) < 0.3, rng.normal(0, 1e5, (P, A)), 0.0)
    sigma = rng.uniform(0.01, 0.2, (T, A))
    qp = rng.uniform(2.0, 3.5, (T, A))
    qn = rng.uniform(2.0, 3.5, (T, A))
    corr = np.empty((T, A, A))
    for t in range(T):
        m = rng.normal(size=(A, A + 2))
        c = m @ m.T
        d = np.sqrt(np.diag(c))
        corr[t] = c / d[:, None] / d[None, :]
    return x, sigma, qp, qn, corr


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), P=st.integers(1, 40), A=st.integers(1, 12), T=st.integers(1, 15))
def test_sparse_kernel_equals_dense_formula(seed: int, P: int, A: int, T: int) -> None:
    x, sigma, qp, qn, corr = _inputs(seed, P, A, T)
    out = np.empty((T, P))
    cross_path(x, sigma, qp, qn, corr, out)
    np.testing.assert_allclose(out, _dense(x, sigma, qp, qn, corr), rtol=1e-13, atol=1e-9)


def test_nan_only_poisons_accounts_holding_the_asset() -> None:
    x, sigma, qp, qn, corr = _inputs(3, 30, 6, 4)
    x[:, 5] = 0.0
    x[0, 5] = 1e4  # only account 0 holds asset 5
    sigma[2, 5] = np.nan
    out = np.empty((4, 30))
    cross_path(x, sigma, qp, qn, corr, out)
    assert np.isnan(out[2, 0]) and np.isfinite(np.delete(out, [0], axis=1)).all()
    assert np.isfinite(out[[0, 1, 3], 0]).all()
    np.testing.assert_allclose(np.delete(out, [0], axis=1), np.delete(_dense(x, sigma, qp, qn, corr), [0], axis=1),
                               rtol=1e-13)


def test_an_empty_account_has_zero_margin_and_scaling_is_linear() -> None:
    x, sigma, qp, qn, corr = _inputs(5, 8, 5, 3)
    x[4] = 0.0
    out = np.empty((3, 8))
    cross_path(x, sigma, qp, qn, corr, out)
    out2 = np.empty((3, 8))
    cross_path(3.0 * x, sigma, qp, qn, corr, out2)
    assert (out[:, 4] == 0.0).all()
    np.testing.assert_allclose(out2, 3.0 * out, rtol=1e-13)
