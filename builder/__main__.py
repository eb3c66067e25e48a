"""`python -m builder`: the same as the `sandbox` command."""

from builder.cli.entry import main

main()
