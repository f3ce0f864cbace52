"""Errors that reach the user as a one-line message rather than a traceback."""


class SemembedError(ValueError):
    """Bad input (file, line, flag or argument) described in plain words.

    Command-line programs catch it and print ``error: <message>`` with exit
    status 2; library users can catch it as a ``ValueError``.
    """
