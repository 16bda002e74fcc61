"""Schemathesis hooks of the contract run (tests/e2e/test_contract.py): the ``uscc`` format.

The schema says a USCC's alphabet and length with a pattern; its two check characters (the
organisation code's at position 17, GB 11714, and the code's own at 18, GB 32100) cannot be said
in a pattern, so the schema names the format ``uscc`` and this strategy draws codes that pass both.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from scoring.data.uscc import CHARSET, make_uscc

AUTHORITIES = (
    "11",
    "12",
    "13",
    "19",
    "21",
    "29",
    "31",
    "32",
    "33",
    "34",
    "39",
    "51",
    "52",
    "53",
    "59",
    "91",
    "92",
    "93",
)


@st.composite
def uscc(draw: st.DrawFn) -> str:
    """A well-formed USCC: registering authority and entity type, division, organisation code, checks."""
    head = draw(st.sampled_from(AUTHORITIES))
    division = draw(st.text("0123456789", min_size=6, max_size=6))
    body = draw(st.text(CHARSET, min_size=8, max_size=8))
    return make_uscc(authority=head[0], entity_type=head[1], division=division, org_body=body)


schemathesis.openapi.format("uscc", uscc())
