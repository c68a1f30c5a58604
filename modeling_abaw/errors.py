"""The error raised for a user's mistake (bad file, bad flag value): the CLI prints its message as one line."""


class InputError(ValueError):
    """Bad input from the user; the message names the input and the problem."""
