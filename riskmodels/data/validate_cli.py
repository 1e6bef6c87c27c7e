"""``riskmodels data validate DIR [--interval] [--config] [--against OTHER_DIR]``."""

from __future__ import annotations

import argparse

__all__ = ["add_validate_arguments", "run_validate"]


def add_validate_arguments(p: argparse.ArgumentParser) -> None:
    """The options beyond ``dir`` and ``--strict``."""
    p.add_argument("--interval", default=None,
                   help="bar interval the files should have (1d, 1h...); default: from each "
                        "file's name, else its spacing")
    p.add_argument("--config", default=None,
                   help="TOML config whose [data] columns / symbols / name_pattern / "
                        "max_file_mb say how to read the files")
    p.add_argument("--against", metavar="OTHER_DIR", default=None,
                   help="compare the closes with another source of the same assets: best "
                        "stamp lag and median / max disagreement")
    p.add_argument("--max-lag", type=int, default=3, help="lags tried by --against (bars)")


def run_validate(args: argparse.Namespace) -> int:
    """Print the per-file table and the defects (and the comparison); exit 1 with
    ``--strict`` when an error-severity defect (an unreadable file included) is found."""
    from riskmodels.data.loaders import validate_directory
    from riskmodels.data.options import LoaderOptions

    opts = LoaderOptions()
    if getattr(args, "config", None):
        from riskmodels.config import read_toml

        opts = LoaderOptions.from_config(read_toml(args.config).get("data", {}))
    kw = opts.kwargs()
    report = validate_directory(args.dir, interval=getattr(args, "interval", None), **kw)
    print(report)
    if getattr(args, "against", None):
        from riskmodels.data.compare import compare_sources

        cmp = compare_sources(args.dir, args.against, interval=getattr(args, "interval", None)
                              or report.interval or "1d", max_lag=args.max_lag, **kw)
        print()
        print(cmp)
    return 1 if args.strict and report.errors else 0
