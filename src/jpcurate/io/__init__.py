"""Reading and writing records: `readers` (JSONL plain/.gz/.zst and Parquet -> Document / Malformed, streamed) and
`writers` (sharded, atomic parts: JSONL plain/.gz/.zst or Parquet)."""
