"""Shared fixtures: where the real data is, and small hand-built panels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodels.data.panel import PricePanel

ROOT = Path(__file__).resolve().parents[1]


def real_data_root() -> Path | None:
    """``$RISKMODELS_DATA`` if set, else ``../shared/data`` beside the project."""
    env = os.environ.get("RISKMODELS_DATA")
    cand = Path(env) if env else ROOT.parent / "shared" / "data"
    return cand if cand.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder holding ``crypto-daily/`` (and ``crypto-hourly/``); skips when absent."""
    root = real_data_root()
    if root is None:
        pytest.skip(
            "real price data not found: set RISKMODELS_DATA or place the shared data at ../shared/data"
        )
    return root


@pytest.fixture(scope="session")
def daily_dir(data_root: Path) -> Path:
    d = data_root / "crypto-daily"
    if not d.is_dir():
        pytest.skip(f"{d} is missing: the real daily files are needed for this test")
    return d


def make_panel(close: np.ndarray, assets: tuple[str, ...] | None = None, start: str = "2020-01-01",
               spread: float = 0.0) -> PricePanel:
    """A PricePanel from closes; open = previous close, high/low = close x (1 +- spread)."""
    close = np.asarray(close, dtype=np.float64)
    if close.ndim == 1:
        close = close[:, None]
    T, A = close.shape
    assets = assets or tuple(f"A{j}" for j in range(A))
    opn = np.vstack([close[:1], close[:-1]])
    high = np.maximum(opn, close) * (1 + spread)
    low = np.minimum(opn, close) * (1 - spread)
    dates = pd.date_range(start, periods=T, freq="D")
    return PricePanel(dates, assets, opn, high, low, close, np.ones_like(close))


def random_walk_panel(T: int = 600, A: int = 3, seed: int = 0, vol: float = 0.03) -> PricePanel:
    """Seeded Gaussian log random walk, prices start at 100."""
    rng = np.random.default_rng(seed)
    r = vol * rng.standard_normal((T, A))
    r[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    return make_panel(close, spread=0.01)


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail any connection or name lookup that would leave 127.0.0.1 / ::1 (issue 24: tests
    never send traffic anywhere but the loopback). A blocked lookup raises ``socket.gaierror``,
    as on a machine without DNS."""
    import ipaddress
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def loopback(host: object) -> bool:
        if host in ("localhost", "localhost.localdomain"):
            return True
        try:
            return ipaddress.ip_address(str(host)).is_loopback
        except ValueError:
            return False

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):  # type: ignore[index]
            raise ConnectionRefusedError(f"test guard: connection to {address} blocked")

    def connect(self, address):  # type: ignore[no-untyped-def]
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):  # type: ignore[no-untyped-def]
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host is not None and not loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: lookup of {host} blocked")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
