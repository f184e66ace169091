"""Engines run a pipeline over files: `local` (worker processes, resumable; `run_local`), `ray` (Ray Data;
`run_ray`, `run_dedup_ray`), and `workers` (the process pool both local engines use: workers die with the parent and
leave Ctrl-C to it). An engine is a callable `(pipeline, inputs, RunOptions) -> Stats`."""
