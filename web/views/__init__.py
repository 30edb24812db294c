"""One blueprint per resource; each view declares its access (web.security)."""
