"""The call record the line supervisor builds and the call log stores."""

from dataclasses import dataclass, field

DIRECTIONS = ("in", "out")
# Why a call ended:
#   local      our side (the box's handset or an extension) hung up
#   remote_break     the far end cleared first: a loss of line voltage (an exchange
#                    K-break, an adapter's open-loop disconnect / loop-current break)
#   remote_reversal  the far end cleared first: the line polarity reversed
#   remote_tone      the far end cleared first: a clear-down tone (busy, unobtainable,
#                    congestion) of any country the box listens for
#   remote_silence   the far end went without a signal: the line stayed silent for the
#                    silence timeout; the call ended where the silence began
#   remote     (older records) the far end cleared first
#   missed     an inbound call that rang and was never answered
#   abandoned  an outbound off-hook that never dialled or connected
#   fault      the line failed (no line voltage) during the call
REMOTE_REASONS = ("remote_break", "remote_reversal", "remote_tone", "remote_silence")
END_REASONS = ("local",) + REMOTE_REASONS + ("remote", "missed", "abandoned", "fault")


@dataclass
class Call:
    """One call on one line. Times are clock microseconds (``*_us``).

    ``id`` is given by the call log when the call starts. ``answered_us`` is
    when an inbound call was picked up or, for an outbound call, when it
    connected: the end of dialling (the last digit), since an analogue line
    gives no answer signal of its own.
    """

    line: int
    direction: str
    started_us: int
    id: int = None
    answered_us: int = None
    ended_us: int = None
    number: str = None
    name: str = None
    cid_datetime: str = None
    cid_standard: str = None
    absence: str = None  # "private" or "unavailable" when withheld
    dial_method: str = None  # "pulse" or "dtmf" for outbound calls
    extension: bool = False  # picked up / placed on a parallel extension
    # The line's outside-line digit when the call began (a PBX extension's 9; "" for
    # none): a prefix of the number dialled (firmware.calls.supervisor.dialling_prefix).
    # Not logged: the number is, as dialled.
    outside_line: str = ""
    end_reason: str = None
    # While the line is silent during the call: since when (clock µs; the DSP's Quiet).
    # A silence clear would end the call there, so a minimum talk is not reached by
    # waiting in silence. Not logged.
    quiet_us: int = None
    notes: list = field(default_factory=list)
    ring_cadence_ms: tuple = None  # the ringing heard (on, off, on, off ... ms), not logged
    # Set by the recording policy (firmware.policy): "record", "skip" or, on an
    # on-demand line not asked yet, "pending"; the reason in words; the consent
    # notice given (a dict, see firmware.policy.consent); the PCI pauses
    # ([{"from_us", "to_us", "by", "ended_by"}], clock µs); the call's tags.
    policy_decision: str = None
    policy_reason: str = None
    consent: dict = None
    pause_spans: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    # When keys were pressed during the connected call (wall time of each key's
    # start, ISO 8601 with ms): the call's timeline, and where DTMF masking cut
    # them out of the recording. Which key is never kept (card numbers).
    key_times: list = field(default_factory=list)
    # Digits keyed after a card number while still dialling (its security code, an
    # expiry date): never kept, neither in the number nor anywhere else (PCI DSS);
    # this says some were (:mod:`firmware.policy.cards`).
    digits_withheld: bool = False

    @property
    def answered(self):
        return self.answered_us is not None

    @property
    def live(self):
        return self.ended_us is None
