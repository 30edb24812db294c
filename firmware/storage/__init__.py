"""What the box keeps safe on the card: the audit trail, the key store, the
encryption primitives, crash-safe file writes."""
