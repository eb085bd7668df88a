"""The one exception type for problems the user can fix (bad input, missing files, no face).

Scripts catch it in :func:`talkingface.util.cli.run_cli` and turn it into a one-line message on
stderr and exit status 2; anything else is a bug and keeps its traceback.
"""


class UserInputError(Exception):
    """Input the toolkit cannot work with. The message is shown to the user as one line."""


class NoFaceError(UserInputError):
    """A frame in which no usable face was found (names the frame in its message)."""


class MediaError(UserInputError):
    """A media file that cannot be read, decoded or written."""
