"""The one exception type for mistakes a user can make (bad config, bad file, bad flag).

The CLI prints a :class:`UserError` as one line (``riskmodels: error: ...``)
and exits 2, without a traceback (``--debug`` shows it). The message names
where the mistake is (file and line or key), the value found and the remedy.
It subclasses :class:`ValueError` so library callers that catch ``ValueError``
keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in an input the user wrote: the message says where, what and how to fix it."""


class UserFileNotFound(UserError, FileNotFoundError):
    """An input file named by the user does not exist (also a ``FileNotFoundError``)."""


__all__ = ["UserError", "UserFileNotFound"]
