"""The one error tree of feedsvc; owns no handling policy.

Every error the project raises on purpose derives from ``FeedsvcError``.
Third-party exceptions are wrapped only where they enter (a parser, the
store), with the cause chained, and the resource (a file path, a setting
name) travels in the exception. Programming errors are left alone.
"""

from __future__ import annotations


class FeedsvcError(Exception):
    """Root of every error feedsvc raises on purpose."""


class ConfigError(FeedsvcError):
    """A setting is unknown or has a bad value; ``key`` names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class SourceError(FeedsvcError):
    """A content file cannot be read or understood; ``path`` names it.

    ``reason`` is a short sentence for people (scan reports, logs, the API);
    it never contains an absolute path or a stack trace.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ContentRootError(FeedsvcError):
    """The content root is missing, not a directory, unreadable or empty.

    A scan that meets this changes nothing in the store: a vanished folder
    must never read as "every item was deleted". ``reason`` says what is wrong
    without the folder's absolute path, so it may be shown to anyone
    (``/api/status``); the message itself names the folder for the log.
    """

    def __init__(self, root: object, reason: str) -> None:
        super().__init__(f"content folder {root} {reason}")
        self.reason = f"the content folder {reason}"


class StoreError(FeedsvcError):
    """The store cannot be reached or refused an operation."""
