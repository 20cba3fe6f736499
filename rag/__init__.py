"""govqa: question answering and fact extraction over Chinese government reports."""

__version__ = "0.1.0"


class GovqaError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""
