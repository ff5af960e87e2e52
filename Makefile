# cohort: two commands matter. `make run` runs the product with embedded
# defaults; `make test` runs every test. Both install what they need.

GO      ?= go
BIN     := bin/cohort
ADDR    ?= 127.0.0.1:8080
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The client build (every command but `serve` and `token create`), for
# instructors' and participants' laptops.
DIST_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

.PHONY: run test deps test-deps bench-deps build dist vet bench screenshots pulumi lint-images image agent clean

## run: build and serve on $(ADDR) with SQLite and local notebooks
run: deps build
	$(BIN) serve --addr $(ADDR)

## test: vet, check the clients cross-compile, and run all tests (real SQLite, Jupyter,
## Chromium, Postgres, the Pulumi engine and cohort processes)
test: test-deps pulumi vet lint-images dist
	COHORT_TEST_POSTGRES=required $(GO) test -race -count=1 ./...

## bench: measure start-to-ready, memory and expiry with the local driver; the notebook proxy
## against direct Jupyter and configurable-http-proxy; the API; the sweep; SQLite against Postgres;
## a class start on the GCE path (the real engine, the fake cloud); click-to-ready with and without warm seats
bench: bench-deps build pulumi
	$(GO) run ./cmd/cohort-bench
	COHORT_TEST_POSTGRES=required $(GO) test -run XXX -bench API -benchtime 10000x ./api/
	$(GO) test -run XXX -bench . -benchtime 20x ./timeouts/
	COHORT_TEST_POSTGRES=required $(GO) test -run XXX -bench Stores -benchtime 300x ./store/postgres/
	COHORT_TEST_POSTGRES=required $(GO) test -run XXX -bench ProvisioningPasses -benchtime 1x ./jobs/
	$(GO) test -run XXX -bench ClassStart -benchtime 1x ./provisioner/gce/
	$(GO) test -run XXX -bench ClickToReady -benchtime 1x ./cmd/cohort/
	$(GO) test -run XXX -bench 'SessionStart|WorkZip' -benchtime 20x ./materials/

bench-deps:
	@sh scripts/deps.sh bench

deps:
	@sh scripts/deps.sh

test-deps:
	@sh scripts/deps.sh test

## screenshots: refresh docs/screenshots from the browser test
screenshots: test-deps
	COHORT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run TestE2EWorkshopInTheBrowser ./cmd/cohort/

## build: the server build (Linux): bin/cohort, every command including `serve`
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cohort

## dist: the client build for every laptop in dist/, with SHA256SUMS
dist:
	@rm -rf dist && mkdir -p dist
	@for t in $(DIST_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		out=dist/cohort-$(VERSION)-$$os-$$arch$$ext; \
		echo "dist: $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -tags client -trimpath \
			-ldflags "-s -w $(LDFLAGS)" -o $$out ./cmd/cohort || exit 1; \
	done
	@cd dist && sha256sum cohort-* > SHA256SUMS

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

## pulumi: build the Pulumi CLI from the Go module proxy into bin/pulumi (no download site needed)
PULUMI_VERSION := v3.274.1
pulumi: bin/pulumi
bin/pulumi: tools/pulumi/go.mod
	cd tools/pulumi && $(GO) mod tidy && $(GO) build -o ../../bin/pulumi \
		-ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_VERSION)" \
		github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

## agent: the session agent for the image (Linux, amd64)
agent:
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o bin/cohort-agent-linux-amd64 ./cmd/cohort-agent

## lint-images: check the image template's syntax and its scripts (no cloud
## needed; `go test ./images/` checks what cohort relies on in the template)
lint-images: agent
	shellcheck images/scripts/*.sh
	packer fmt -check images/

## image: build the runtime image in your project (PROJECT=...; see docs/gcp.md)
image: agent
	cd images && packer init . && packer build -var project_id=$(PROJECT) .

clean:
	rm -rf bin dist
