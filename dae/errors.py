"""The one error type a user sees: a one-line message saying what to do."""


class UserError(Exception):
    """Bad input or a missing earlier stage.

    The message is a single line that names the problem and what to run;
    scripts print it and exit non-zero (see `dae.cli.run`).
    """
