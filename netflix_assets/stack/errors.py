"""The stack's one error type: every message names the cause and the fix."""


class StackError(RuntimeError):
    """A service of the local stack could not be installed, started or reached."""
