"""`gpucloud bench`: a load generator for any OpenAI-compatible endpoint (this platform, vLLM, OpenAI).

- `workload`: the requests to send (synthetic prompts of a given token length, or a JSONL dataset);
- `client`: one request over httpx, timed chunk by chunk when streamed;
- `metrics`: a level's results summarised with vLLM's benchmark names and definitions (TTFT, TPOT,
  ITL, E2EL; request, output and total token throughput), so figures compare with `vllm bench serve`;
- `runner`: a level at a fixed concurrency or at a Poisson request rate, for N requests or S seconds;
- `report`: the summary table (rich), the JSON file and the optional plot (matplotlib).
"""
