# tend's build. `make` always yields the static binary bin/tend, whatever
# CGO_ENABLED or GOFLAGS say in the environment.
#
#   make                 bin/tend: static, stripped, stamped with the VCS revision
#   make VERSION=1.2.3   the same, named 1.2.3 when built without VCS or module
#                        information (a source tarball); see `tend --version`
#   make test            the whole test suite, as CI runs it (root for the
#                        integration tests)
#   make check           gofmt and go vet

GO      ?= go
VERSION ?=
# Stamp the git revision when git can read this tree (go's own "auto"), and
# build without it (instead of failing) when it cannot, e.g. a tarball or a
# checkout owned by another user. Given explicitly, it overrides a
# GOFLAGS=-buildvcs=false from the environment or `go env -w`.
BUILDVCS ?= $(shell git status --porcelain >/dev/null 2>&1 && echo auto || echo false)
LDFLAGS := -s -w$(if $(VERSION), -X main.version=$(VERSION))

.PHONY: all bin/tend test check clean

all: bin/tend

# Phony: go's own cache decides what to rebuild.
bin/tend:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=$(BUILDVCS) -ldflags='$(LDFLAGS)' -o $@ .

test:
	$(GO) test -race -count=1 ./...

check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
