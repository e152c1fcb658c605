"""JSON responses rendered with orjson (several times faster than the standard library).

A route answers with a `View` (the response models of `gateway.views`) or, on the OpenAI hot
path, with the dicts `gateway.formats` renders. A view is dumped with `exclude_unset`: a field
with a default that its builder did not set (a registration-only `session`, say) is left out of
the body, as the API documents.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        body = body.model_dump(exclude_unset=True)
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )
