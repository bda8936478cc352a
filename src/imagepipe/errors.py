"""Errors that mean the input, not the code, is wrong: jobs report them in one line and exit with REFUSED."""

# A job's exit status when it refuses its input (bad argument, missing credentials, unusable source): argparse's own
# status for a usage error, distinct from a crash (1). A retry cannot change the answer, so the task fails at once.
REFUSED = 2


class InputError(ValueError):
    """The data or arguments cannot be used; the message says what was wrong and what to do."""


class MissingRecordError(InputError, LookupError):
    """A step's input record is absent: the step that writes it has not run."""
