"""Reference notes shipped with the package (cited by the governance report); read with :func:`read_doc`."""

from __future__ import annotations

from importlib import resources

__all__ = ["available_docs", "read_doc"]


def available_docs() -> list[str]:
    """Names of the shipped notes (``references``, ``crash_days``)."""
    return sorted(p.name[:-3] for p in resources.files(__name__).iterdir() if p.name.endswith(".md"))


def read_doc(name: str) -> str:
    """The text of ``riskmodels/docs/<name>.md``."""
    if name not in available_docs():
        raise KeyError(f"no shipped doc {name!r}; available: {available_docs()}")
    return resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")
