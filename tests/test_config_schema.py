"""The config schema: strict type rules (hypothesis invariants), coverage of every section, key and model."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskmodels import config
from riskmodels.config_schema import (
    SECTION_CHECKERS,
    SECTION_SCHEMAS,
    check_document,
    check_params,
    class_schema,
)
from riskmodels.errors import UserError
from riskmodels.schema import DATE, Range, check_value, suggest

not_bool = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.lists(st.integers(), max_size=2))


@given(not_bool)
def test_a_boolean_is_only_true_or_false(v) -> None:
    with pytest.raises(UserError, match="must be a boolean"):
        check_value(v, bool, "f: [s] k")


@given(st.booleans())
def test_booleans_pass_unchanged(v: bool) -> None:
    assert check_value(v, bool, "k") is v


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_is_never_silently_an_int(v: float) -> None:
    with pytest.raises(UserError, match="must be an integer"):
        check_value(v, int, "k")


@given(st.integers())
def test_ints_pass_as_ints_and_as_floats(v: int) -> None:
    assert check_value(v, int, "k") == v and type(check_value(v, int, "k")) is int
    f = check_value(v, float, "k")
    assert type(f) is float and f == float(v)


@given(st.one_of(st.text(), st.booleans()))
def test_a_number_is_never_a_string_or_a_boolean(v) -> None:
    with pytest.raises(UserError, match="must be a number"):
        check_value(v, float, "k")


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10))
def test_range_accepts_exactly_the_closed_open_interval(v: float) -> None:
    hint = Annotated[float, Range(0.0, 1.0, hi_open=True)]
    inside = 0.0 <= v < 1.0  # the interval computed independently
    if inside:
        assert check_value(v, hint, "k") == v
    else:
        with pytest.raises(UserError, match=r"valid range \[0, 1\)"):
            check_value(v, hint, "k")


def test_nan_is_outside_every_range() -> None:
    with pytest.raises(UserError, match="valid range"):
        check_value(float("nan"), Annotated[float, Range(0, 1)], "k")


def test_literal_is_exact_in_type_and_value() -> None:
    hint = Literal[1, 2, 3, 5, 10]
    assert check_value(2, hint, "k") == 2
    for bad in (2.0, True, "2", 4):
        with pytest.raises(UserError, match="must be one of"):
            check_value(bad, hint, "k")


def test_dates() -> None:
    d = Annotated[str, DATE]
    assert check_value(dt.date(2021, 6, 1), d, "k") == "2021-06-01"
    assert check_value("2021-06-01", d, "k") == "2021-06-01"
    for bad, words in [("2021-06-01T00:00+05:00", "time zone"), ("June", "not a date"), (20210601, "date"),
                       (dt.datetime(2021, 6, 1, 12), "time of day"),
                       (dt.datetime(2021, 6, 1, tzinfo=dt.UTC), "time zone")]:
        with pytest.raises(UserError, match=words):
            check_value(bad, d, "k")


def test_suggestion_is_the_nearest_key() -> None:
    assert suggest("mpr", ["mpor", "min_history"]) == "; did you mean 'mpor'?"
    assert suggest("zzzz", ["mpor"]) == ""


def test_the_default_config_passes_and_every_key_is_declared() -> None:
    cfg = config.default_config()
    assert check_document(cfg, "default.toml") == cfg
    for name, table in cfg.items():
        if name == "models" or name in SECTION_CHECKERS:  # checked whole by their dataclasses
            continue
        assert set(table) <= set(SECTION_SCHEMAS[name]()), name


def test_every_section_has_a_schema() -> None:
    """A section added to config.SECTIONS without a schema would pass unchecked: add it to SECTION_SCHEMAS."""
    from riskmodels.config_schema import SECTION_CHECKERS

    assert set(config.SECTIONS) - {"models"} <= set(SECTION_SCHEMAS) | set(SECTION_CHECKERS)


def test_schema_keys_are_what_the_code_reads() -> None:
    """Every [backtest]/[book]/[data] key the schema declares is in the default config (no dead keys)."""
    cfg = config.default_config()
    for name, cls in (("backtest", "BacktestKeys"), ("book", "BookKeys"), ("data", "DataKeys")):
        from riskmodels import config_schema

        assert set(class_schema(getattr(config_schema, cls))) == set(cfg[name]), name


def test_every_registered_model_accepts_its_own_defaults_through_the_schema() -> None:
    import riskmodels.margin  # noqa: F401
    from riskmodels.margin import base

    for name in base.available():
        cls = base._REGISTRY[name]
        try:
            model = cls()
        except TypeError:  # a wrapper needs its inner model
            model = cls(inner="historical_var")
        params = {k: v for k, v in model.params().items() if v is not None and k != "inner"}
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
        check_params(name, params, f"[[models]] {name}")


def test_model_params_are_checked_against_the_constructor() -> None:
    with pytest.raises(UserError, match="did you mean 'window'"):
        check_params("historical_var", {"windw": 250}, "w")
    with pytest.raises(UserError, match="recalibration"):
        check_params("scenario_grid", {"recalibration": "montly"}, "w")
    with pytest.raises(UserError, match="must be a boolean"):
        check_params("fixed_haircut", {"netting": "false"}, "w")
