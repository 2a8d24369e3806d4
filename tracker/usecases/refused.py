"""How a use case says no: the kind of refusal, which the web and the API turn into a status
(400, 404 or 409) and the CLI into an exit code, and the words for the user."""

from typing import Literal

Refusal = Literal["invalid", "missing", "claimed", "decided"]


class Refused(Exception):
    """Nothing was written. `refusal`: the input broke a rule (invalid), or what it names is
    gone (missing), held by someone else (claimed), or already decided."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
