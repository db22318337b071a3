"""The numbers a request states, however they are written: 5000, 5,000, 5k, 2.5M, 1e4, "five
thousand", 1.2 TeV (in GeV). The router may only fill a numeric argument with one of these, so a
number is never invented."""

from __future__ import annotations

import re

_UNITS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "a": 1,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_SUFFIX = {"k": 1000, "m": 1_000_000}
# A number not glued to a word before it (tau21, run2, wz-6k are names, not numbers); "600-700" is
# a range of two numbers.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])(?<![A-Za-z_]-)(\d+(?:,\d{3})+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s?([kKmM](?![a-zA-Z])|TeV|tev)?(?:st|nd|rd|th)?"
)
_JOB_ID = re.compile(r"job-\d{8}-\d{6}-[0-9a-f]{6}")
_WORDS = re.compile(
    r"\b((?:a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty)"
    r"(?:\s+(?:hundred|thousand|million))+|(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty))\b",
    re.IGNORECASE,
)


def numbers_in(text: str) -> list[float]:
    """The numbers in ``text``, in order of appearance (duplicates kept once)."""
    text = _JOB_ID.sub(" ", text)  # a job id's digits are not quantities
    found: list[tuple[int, float]] = []
    for m in _NUMBER.finditer(text):
        value = float(m.group(1).replace(",", ""))
        unit = (m.group(2) or "").lower()
        if unit in _SUFFIX:
            value *= _SUFFIX[unit]
        elif unit == "tev":
            value *= 1000
        found.append((m.start(), value))
    for m in _WORDS.finditer(text):
        parts = m.group(1).lower().split()
        value = float(_UNITS.get(parts[0], 1))
        for p in parts[1:]:
            value *= _SCALES[p]
        if len(parts) > 1 or parts[0] != "a":
            found.append((m.start(), value))
    out: list[float] = []
    for _, v in sorted(found):
        if v not in out:
            out.append(v)
    return out
