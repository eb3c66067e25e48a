"""One resolver per layer kind; `builder.lock.locking` drives them to produce a Lock."""
