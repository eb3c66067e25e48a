# The two set-up commands of the README. Each installs what it needs first.
.PHONY: demo test lint setup

setup:
	./scripts/host-setup.sh

# Lock and build the repository's own sandbox.toml, then show the image and the overlay.
demo: setup
	.venv/bin/sandbox doctor
	.venv/bin/sandbox lock
	.venv/bin/sandbox build
	.venv/bin/sandbox check
	@echo "--- image"
	@docker image inspect sandbox-builder/dev-sandbox:latest --format '{{.Id}} user={{.Config.User}}'
	@echo "--- overlay (cache/overlay.json)"
	@.venv/bin/sandbox overlay show

# Lint, type-check, the lock of the example, then the whole suite on a real Docker Engine.
test: setup lint
	.venv/bin/sandbox lock --check
	.venv/bin/pytest -q --durations=12

lint:
	.venv/bin/ruff check builder tests bench
	.venv/bin/ruff format --check builder tests bench
	.venv/bin/mypy
