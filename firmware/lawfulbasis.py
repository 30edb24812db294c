"""The lawful bases for recording calls (UK GDPR Article 6(1)), as the site settings name them.

Recording a call processes the personal data of everyone on it, and Article 6
allows that only on one of its bases, chosen and recorded before recording
starts (accountability, Article 5(2)): an auditor or a person asking for their
data is owed it. Vital interests (6(1)(d)) is left out: it covers a life at
stake, never a recording kept as a matter of course. Legitimate interests
(6(1)(f)) also needs a legitimate interests assessment (the purpose, the need,
the balance against the people recorded), so the settings keep its date.
"""

LEGITIMATE_INTERESTS = "legitimate_interests"

#: The settings' codes, in the order the form offers them: (words, Article 6(1) point).
BASES = {
    LEGITIMATE_INTERESTS: ("legitimate interests", "6(1)(f)"),
    "legal_obligation": ("a legal obligation", "6(1)(c)"),
    "contract": ("a contract with the person", "6(1)(b)"),
    "consent": ("consent", "6(1)(a)"),
    "public_task": ("a public task", "6(1)(e)"),
}


def basis_words(code, country="uk"):
    """``code`` in words with its article ("legitimate interests (Article 6(1)(f) of the
    UK GDPR)"), or "" for no code. A code not known is shown as it is (a newer release's)."""
    if not code:
        return ""
    words, point = BASES.get(code, (code.replace("_", " "), None))
    if point is None:
        return words
    return "%s (Article %s of the %sGDPR)" % (words, point, "UK " if country == "uk" else "")
