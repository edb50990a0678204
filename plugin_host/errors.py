"""Errors the user can fix: the CLI prints their one-line text and exits with code 2."""


class UsageError(Exception):
    """Bad input from the user: the message names the problem and the fix."""
