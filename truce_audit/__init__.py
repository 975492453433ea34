"""The outsider's verifier of the tamper-evident log (CONTRACT 8): signature, root,
consistency and inclusion proofs, and a recount of a weekly report from the log's entries.

Needs the standard library, ``cryptography`` and ``core/merkle.py`` (itself stdlib only)
and nothing else of Truce (an import-linter contract enforces it), so a third party can
read all of it and run it against any Truce query service."""
