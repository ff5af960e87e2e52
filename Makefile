# cohort: two commands matter. `make run` runs the product with embedded
# defaults; `make test` runs every test. Both install what they need.

GO      ?= go
BIN     := bin/cohort
ADDR    ?= 127.0.0.1:8080

.PHONY: run test deps build vet bench clean

## run: build and serve on $(ADDR) with SQLite and local notebooks
run: deps build
	$(BIN) serve --addr $(ADDR)

## test: vet and run all tests (real SQLite, Jupyter and cohort processes)
test: deps vet
	$(GO) test -race -count=1 ./...

## bench: measure start-to-ready and server memory with the local driver
bench: deps build
	$(GO) run ./cmd/cohort-bench

deps:
	@sh scripts/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/cohort

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

clean:
	rm -rf bin
