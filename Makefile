# PythonIDE. The two commands a newcomer needs:
#   make run    build everything and start on http://localhost:8080
#   make test   run every test this machine can run
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN            ?= bin/pyide
SANDBOX_IMAGE  ?= pyide-sandbox:latest
IDE_DATA_PATH  ?= $(CURDIR)/data
PORT           ?= 8080
GOLANGCI_LINT  ?= $(shell command -v golangci-lint || echo $(HOME)/go/bin/golangci-lint)
export SANDBOX_IMAGE

.PHONY: help run cli build frontend prereqs sandbox-image dolos-image test test-go test-runner test-frontend e2e bench bench-class lint fmt clean

help:
	@echo "make run            build and start on http://localhost:$(PORT) (embedded database)"
	@echo "make test           every test: vet, lint, Go (race), runner, front end, end-to-end"
	@echo "make cli ARGS=...   the pyide CLI on make run's data folder (e.g. ARGS='user add bob')"
	@echo "make build          the pyide binary (with the front end when npm is present)"
	@echo "make sandbox-image  the student container image"
	@echo "make dolos-image    the similarity report's image (Dolos)"
	@echo "make e2e            the browser end-to-end flow (needs chromium and Docker)"
	@echo "make bench          benchmarks (sandbox start, terminal, files)"
	@echo "make lint           gofmt, go vet, golangci-lint"

# Installs what is missing (apt, as root or with sudo) and starts the Docker
# engine; see deploy/setup-host.sh.
prereqs:
	@IDE_DATA_PATH=$(IDE_DATA_PATH) bash deploy/setup-host.sh

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

frontend: frontend/node_modules/.package-lock.json
	cd frontend && npm run build

build:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory frontend; else echo "npm not found: building without the front end (the IDE page will say so)"; fi
	CGO_ENABLED=0 go build -trimpath -o $(BIN) ./cmd/pyide

sandbox-image:
	bash sandbox-image/build.sh

dolos-image:
	bash dolos-image/build.sh

run: prereqs build
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory sandbox-image; else echo "No Docker engine answers: the IDE will open and edit files, but Run will say execution is unavailable."; fi
	IDE_DATA_PATH=$(IDE_DATA_PATH) PORT=$(PORT) bash deploy/as-server.sh $(BIN) serve

# The CLI on make run's data folder, as the server's user:
#   make cli ARGS='user add bob --role student'
cli:
	@IDE_DATA_PATH=$(IDE_DATA_PATH) bash deploy/as-server.sh $(BIN) $(ARGS)

test:
	@bash .ci/test-all.sh

test-go:
	@bash .ci/gotest.sh

test-runner:
	python3 -m unittest discover -s sandbox-image -p 'test_*.py'

test-frontend: frontend/node_modules/.package-lock.json
	cd frontend && npm run lint && npm run typecheck && npm test

e2e: build
	bash frontend/e2e/run.sh

bench:
	go test -run '^$$' -bench . -benchtime 1x -count 1 ./pkg/...

bench-class:
	go run ./cmd/pyide-load -n $(or $(N),60) $(if $(THINK),-think $(THINK)) $(if $(AB),-ab)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	@if [ -x "$(GOLANGCI_LINT)" ]; then $(GOLANGCI_LINT) run ./...; else echo "golangci-lint not installed: go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin frontend/dist/assets frontend/dist/index.html
