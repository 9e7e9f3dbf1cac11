"""CBS's research dataset: a verified log's events as pseudonymised Parquet tables, month
by month (docs/research.md). `rows` folds events into rows, `dataset` writes them,
`disclosure` decides what tables of people may show (also for GET /v1/stats);
`stadsmunt research` (ops/research_cmd.py) runs the audit that feeds them."""
