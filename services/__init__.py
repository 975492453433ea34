"""The deployable processes (ingest, store, alerter) and the `truce` command that runs them."""
