"""The ``[lending]`` config section, backed by dataclasses (strict keys, named errors).

A lending backtest is a config with ``[market] kind = "lending"`` and a
``[lending]`` table (see ``riskmodels/configs/lending.toml``,
``riskmodels config --example lending``)::

    [lending]            protocol, close_factor, close_factor_hf, full_close_usd,
                         min_leftover_usd, gas_usd, max_rounds, ewma_lambda, positions
    [lending.assets.X]   ltv, lt, lb, protocol_fee, supply_cap, borrow_cap, collateral, borrowable,
                         debt_ceiling, borrowable_in_isolation
    [lending.emode.NAME] ltv, lt, lb, collateral = [...], borrowable = [...]
    [lending.generator]  BorrowerGenerator fields (seeded borrower population)
    [lending.impact]     name = none | sqrt | depth | linear, plus that law's parameters
    [lending.recommend]  enabled + RecommendConfig fields; [lending.recommend.target] kind, value
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from riskmodels.cascade.impact import IMPACT_MODELS, ImpactModel, build_impact
from riskmodels.lending.generate import BorrowerGenerator
from riskmodels.lending.market import LendingMarket
from riskmodels.lending.recommend import LendingTarget, RecommendConfig

__all__ = ["LendingConfig", "is_lending"]

_MARKET_KEYS = ("protocol", "close_factor", "close_factor_hf", "full_close_usd", "min_leftover_usd", "gas_usd",
                "max_discount", "emode")


def is_lending(cfg: dict[str, Any]) -> bool:
    """True for a config whose ``[market] kind`` is ``"lending"``."""
    kind = (cfg.get("market") or {}).get("kind", "margin")
    if kind not in ("margin", "lending"):
        raise ValueError(f"market.kind={kind!r} must be 'margin' (the margin-model backtest) or 'lending'")
    return kind == "lending"


def _strict(where: str, given: dict[str, Any], cls: type) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = set(given) - known
    if unknown:
        raise ValueError(f"[{where}] has unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
    return dict(given)


@dataclass(frozen=True)
class LendingConfig:
    """The validated ``[lending]`` section."""

    market: LendingMarket
    generator: BorrowerGenerator = field(default_factory=BorrowerGenerator)
    impact_name: str = "sqrt"
    impact_params: dict[str, Any] = field(default_factory=dict)
    recommend: RecommendConfig | None = None
    positions: str = ""
    max_rounds: int = 20
    ewma_lambda: float = 0.94

    def impact(self) -> ImpactModel:
        return build_impact(self.impact_name, **self.impact_params)

    @classmethod
    def from_dict(cls, sec: dict[str, Any]) -> LendingConfig:
        """Parse ``[lending]``; every bad key or value raises naming ``lending.<key>``."""
        if not isinstance(sec, dict) or not sec:
            raise ValueError("[market] kind = 'lending' needs a [lending] section with [lending.assets.<ASSET>] tables")
        top = {"assets", "generator", "impact", "recommend", "positions", "max_rounds", "ewma_lambda", *_MARKET_KEYS}
        unknown = set(sec) - top
        if unknown:
            raise ValueError(f"[lending] has unknown key(s) {sorted(unknown)}; valid: {sorted(top)}")
        market = LendingMarket(**{k: sec[k] for k in ("assets", *_MARKET_KEYS) if k in sec})
        gen = BorrowerGenerator(**_strict("lending.generator", sec.get("generator", {}), BorrowerGenerator))
        imp = dict(sec.get("impact", {"name": "sqrt"}))
        name = imp.pop("name", "sqrt")
        if name not in IMPACT_MODELS:
            raise ValueError(f"lending.impact.name={name!r}: valid laws are {', '.join(IMPACT_MODELS)}")
        try:
            build_impact(name, **imp)
        except TypeError as exc:
            raise ValueError(f"[lending.impact] {name}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"lending.impact.{exc}") from None
        rec = None
        r = dict(sec.get("recommend", {}))
        if r.pop("enabled", False):
            target = r.pop("target", {})
            _strict("lending.recommend.target", target, LendingTarget)
            _strict("lending.recommend", r, RecommendConfig)
            for k in ("assets", "lt_bounds", "lb_values", "cap_values"):
                if k in r:
                    r[k] = tuple(r[k])
            rec = RecommendConfig(target=LendingTarget(**target), **r)
            missing = [a for a in rec.assets if a not in market.assets]
            if missing:
                raise ValueError(f"lending.recommend.assets={list(rec.assets)}: {missing} not in [lending.assets]")
        max_rounds = sec.get("max_rounds", 20)
        if not isinstance(max_rounds, int) or isinstance(max_rounds, bool) or max_rounds < 1:
            raise ValueError(f"lending.max_rounds={max_rounds!r} must be an integer >= 1")
        lam = sec.get("ewma_lambda", 0.94)
        if not (isinstance(lam, int | float) and 0.0 < lam < 1.0):
            raise ValueError(f"lending.ewma_lambda={lam!r} must be in (0, 1)")
        pos = sec.get("positions", "")
        if not isinstance(pos, str):
            raise ValueError(f"lending.positions={pos!r} must be a CSV path or \"\" (generate)")
        return cls(market, gen, name, imp, rec, pos, max_rounds, float(lam))
