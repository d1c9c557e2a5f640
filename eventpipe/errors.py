"""Errors a user can act on: the message says what went wrong and what to do next."""


class CommandError(Exception):
    """Raised for a mistake in what the user asked for; the CLI prints it and exits with 1."""
