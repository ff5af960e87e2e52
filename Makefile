# cohort: two commands matter. `make run` runs the product with embedded
# defaults; `make test` runs every test. Both install what they need.

GO      ?= go
BIN     := bin/cohort
ADDR    ?= 127.0.0.1:8080

.PHONY: run test deps test-deps build vet bench screenshots clean

## run: build and serve on $(ADDR) with SQLite and local notebooks
run: deps build
	$(BIN) serve --addr $(ADDR)

## test: vet and run all tests (real SQLite, Jupyter, Chromium and cohort processes)
test: test-deps vet
	$(GO) test -race -count=1 ./...

## bench: measure start-to-ready, memory and expiry with the local driver, and the sweep
bench: deps build
	$(GO) run ./cmd/cohort-bench
	$(GO) test -run XXX -bench . -benchtime 20x ./timeouts/

deps:
	@sh scripts/deps.sh

test-deps:
	@sh scripts/deps.sh test

## screenshots: refresh docs/screenshots from the browser test
screenshots: test-deps
	COHORT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run TestE2EWorkshopInTheBrowser ./cmd/cohort/

build:
	$(GO) build -o $(BIN) ./cmd/cohort

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

clean:
	rm -rf bin
