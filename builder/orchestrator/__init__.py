"""The orchestrator's side: the config overlay pinning the image, and applying it.

`overlay` writes the overlay as the real Risoluto reads it (DESIGN.md §7); `risoluto` applies
it over the config API and reads it back; `applied` records the keys each apply set per URL,
so the next apply removes what the spec dropped. Takes: an image digest. Gives: an overlay.
"""
