"""The one error type a user sees: a one-line message saying what to do; `SettingError`, such an
error about a setting, named as the library or the user spells it; and `first_line`, the reason an
exception gives such a message."""


class UserError(Exception):
    """Bad input or a missing earlier stage.

    The message is a single line that names the problem and what to run;
    scripts print it and exit non-zero (see `dae.cli.run`).
    """


class SettingError(UserError):
    """A setting's value is refused. `problems` are (the field's name as the library spells it,
    the text after "name=value"); the message names the field so, and the command-line layer
    (`dae.cli`) shows `line(user_names=True)`, the user's spelling: ALPHA for alpha."""

    def __init__(self, problems, user_names=False):
        self.problems = list(problems)
        super().__init__(self.line(user_names))

    def __reduce__(self):           # pickled as its problems (a run side by side raises it in another process)
        return type(self), (self.problems,)

    def line(self, user_names=True):
        return "; ".join(f"{name.upper() if user_names else name}{text}" for name, text in self.problems)


def refused(name, text):
    """The SettingError for one setting: ``refused("frame_step", "=0 must be at least 1")``."""
    return SettingError([(name, text)])


def first_line(e):
    """The first line of exception `e`'s message (its type's name if it has none), at most 160
    characters: the reason given in brackets in a one-line UserError."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]
