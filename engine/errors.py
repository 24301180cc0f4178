"""User-facing errors.

Every mistake a user can make (an unknown survey, a malformed spec, an empty slice, a
missing model) raises `FocusgroupError` with one sentence naming the problem and the fix.
The command line prints that sentence and exits with status 2; the dashboard shows it in
an info box. Anything else that escapes is a bug in focusgroup.

Messages are one line: `one_line` flattens a library's multi-line message and caps it, and
`capped` cuts an echoed value (a 10 MB cell, a hostile spec key) to a readable length.
"""


class FocusgroupError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def capped(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters, ending in an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def one_line(text, limit: int = 500) -> str:
    """A message as one line of at most `limit` characters: library errors (pandas,
    tokenizers, safetensors) span lines and may echo a huge value back."""
    return capped(" ".join(str(text).split()), limit)
