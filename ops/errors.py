"""The two ways a command fails, mapped to the contract's exit codes by ops/cli.py."""


class UsageError(Exception):
    """Bad usage or an unreachable source: exit code 2."""


class CheckFailed(Exception):
    """A check or an operation failed: exit code 1."""
