"""One resolver per layer kind; `builder.locking` drives them to produce a Lock."""
