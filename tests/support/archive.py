"""The archive viewer's tests' bucket."""


class MemoryBucket:
    """Objects in a dict: ``keys`` and ``get``, what the viewer reads."""

    def __init__(self, objects):
        self.objects = objects

    def keys(self, prefix=""):
        return [k for k in sorted(self.objects) if k.startswith(prefix)]

    def get(self, key):
        return self.objects[key]
