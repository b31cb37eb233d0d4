"""The one error type a user sees: a one-line message saying what to do (and `first_line`, the
reason an exception gives such a message)."""


class UserError(Exception):
    """Bad input or a missing earlier stage.

    The message is a single line that names the problem and what to run;
    scripts print it and exit non-zero (see `dae.cli.run`).
    """


def first_line(e):
    """The first line of exception `e`'s message (its type's name if it has none), at most 160
    characters: the reason given in brackets in a one-line UserError."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]
