"""The errors that dataset readers and the registry raise.

Every message starts with the file (or URL) it is about and then says what is wrong, so a
user can fix the file rather than read a traceback.
"""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file is malformed, truncated, of the wrong kind, or failed its checksum."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is neither on disk nor obtainable: the message lists where it looked and what it tried.

    It is also a FileNotFoundError so that callers who handle missing files generically catch it too.
    """
