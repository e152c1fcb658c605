"""The Responses API (`POST /v1/responses`), stateless: request models (`schemas`), the mapping
to an engine-neutral chat request (`convert`) and the response object and typed event stream
(`output`). It runs over the same queue, ledger and limits as chat completions."""
