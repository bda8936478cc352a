"""Errors that mean the input, not the code, is wrong: jobs report them in one line and exit non-zero."""


class InputError(ValueError):
    """The data or arguments cannot be used; the message says what was wrong and what to do."""


class MissingRecordError(InputError, LookupError):
    """A step's input record is absent: the step that writes it has not run."""
