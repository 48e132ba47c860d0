# tails-backup. Targets: build, test, bench, demo, lint. test, bench and demo install what they
# need (Debian packages, Go modules) and must run as root: the tests mount ext4 images.
GO ?= go
BIN := bin/tails-backup

.PHONY: all build test bench demo lint fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tails-backup

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test:
	./.ci/deps test
	$(MAKE) lint
	$(GO) test -race -count=1 -timeout 40m ./...

# Short fuzzing of every parser of outside input; FUZZTIME per target.
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	./.ci/deps bench
	$(GO) run ./sync/internal/mirrorbench $(BENCHFLAGS)

demo:
	./.ci/deps demo
	$(GO) build -o $(BIN) ./cmd/tails-backup
	$(GO) run ./sync/internal/demo -bin $(BIN)

clean:
	rm -rf bin
