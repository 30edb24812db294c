"""Lines and calls: the supervisor's state machine, debouncing, the call record,
the call log and its search, and the live line status."""
