"""User-facing errors.

Every mistake a user can make (an unknown survey, a malformed spec, an empty slice, a
missing model) raises `FocusgroupError` with one sentence naming the problem and the fix.
The command line prints that sentence and exits with status 2; the dashboard shows it in
an info box. Anything else that escapes is a bug in focusgroup.
"""


class FocusgroupError(Exception):
    """A problem with the user's input or environment, explained in one line."""
