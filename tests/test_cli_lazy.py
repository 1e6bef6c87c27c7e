"""``riskmodels --help`` imports no sub-command module, numpy or pandas (issue 23, item 3)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from riskmodels.cli import LAZY_COMMANDS, build_parser


def _subparser_helps(parser) -> dict[str, str]:
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {c.dest: c.help for c in action._choices_actions}


def test_stub_help_lines_equal_the_modules_own() -> None:
    """The help lines repeated in cli.py for the fast listing match each module's parser."""
    full = _subparser_helps(build_parser())
    fast = _subparser_helps(build_parser(["--help"]))
    assert fast == full
    for name in LAZY_COMMANDS:
        assert full[name] == LAZY_COMMANDS[name][2]


def test_top_level_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from riskmodels.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('numpy', 'pandas', 'scipy', 'numba', 'riskmodels.sweep', 'riskmodels.margin',"
        " 'riskmodels.calibrate', 'riskmodels.report.cli', 'riskmodels.cascade.cli') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "HEAVY []" in out, out


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_named_sub_command_gets_its_full_parser(name: str, capsys: pytest.CaptureFixture) -> None:
    from riskmodels.cli import main

    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "--" in capsys.readouterr().out  # the module's own options are listed
