"""The names of a board's signals (docs in :mod:`board.base`).

Apart from :mod:`board.base` so that what only needs the names (the call log,
`linekeeper calls`) does not import numpy with the Board interface.
"""

#: Every input a board may give for a line or its buttons.
INPUT_SIGNALS = ("hook", "ring", "polarity", "in_use", "power", "record_button", "pause_button")
#: The inputs every board must give.
REQUIRED_SIGNALS = ("hook", "ring", "polarity")
#: The push buttons: the policy's, not the line's state.
BUTTON_SIGNALS = ("record_button", "pause_button")
#: The inputs that are the line's state.
LINE_SIGNALS = tuple(s for s in INPUT_SIGNALS if s not in BUTTON_SIGNALS)
#: Outputs.
OUTPUT_SIGNALS = ("led",)
