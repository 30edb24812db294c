"""The compliance policy: what is recorded, the notices given, the PCI pause, retention.

Each part is a module of its own with its typed, validated settings; the
box's configuration embeds them as ``policy``.
"""
