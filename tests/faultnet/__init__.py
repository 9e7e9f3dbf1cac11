"""A hostile network between real validator processes: a fault-injecting TCP proxy
between every pair of validators, scenarios of faults under a load of clients, and a
checker of the clients' answers against every validator's ledger. docs/faults.md says
what each scenario does and what is checked; `python -m tests.faultnet` runs them."""
