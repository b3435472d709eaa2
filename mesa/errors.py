"""The one exception type a user can cause: the CLI and the app show its message, no traceback."""


class MesaError(Exception):
    """A failure caused by input (bad argument, missing data, unreadable file), with a clear message."""
