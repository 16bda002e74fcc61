"""How the routes answer: the documented error statuses, JSON encoded once, and public model references."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from scoring.serve.schemas import ErrorResponse

DESCRIBED = {
    400: "the body cannot be parsed (`malformed_body`: not JSON in UTF-8)",
    401: "missing or invalid API key",
    403: "the key's role may not do this, or the enterprise has not authorized this bank (audited)",
    404: "no such enterprise in the evaluation population, or no such decision visible to this key",
    409: "conflicts with what is stored",
    413: "request body too large",
    422: "malformed request (the field and fault are named)",
    429: "rate limit of this key reached: retry after the Retry-After header's seconds",
    503: "no model or no feature snapshot loaded (`not_ready`), the server is at capacity (`overloaded`), or "
    "the decision store cannot be reached (`store_unavailable`: nothing was decided or stored): retry after the "
    "Retry-After header's seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each error status it may answer, with the error body's schema.

    A route that takes a body may also answer 400 (a body that cannot be decoded): list it. A route
    that takes a key (it lists 401) reads the decision store, so it may also answer 503
    (``store_unavailable``): added here.
    """
    if 401 in codes and 503 not in codes:
        codes = (*codes, 503)
    return {c: {"model": ErrorResponse, "description": DESCRIBED[c]} for c in sorted(codes)}


def json_response(body: BaseModel) -> Response:
    """The response model as JSON, as FastAPI would send it, without its second validation.

    FastAPI dumps a returned model to a dict, validates that dict against the response model
    again and serialises the result; the model was validated when it was built.
    """
    return Response(body.model_dump_json(), media_type="application/json")
