"""Errors the CLI prints as one line (no traceback): what is wrong and where."""


class LoaderError(ValueError):
    """Bad input; the message is one line naming the file and the missing piece."""
