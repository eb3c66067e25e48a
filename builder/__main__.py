"""`python -m builder`: the same as the `sandbox` command."""

from builder.entry import main

main()
