"""The one exception type the CLI turns into a readable message."""


class KitError(Exception):
    """A failure the user can act on: what went wrong, and the fix."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message
