# kafka-compat: `make run` starts a single-node broker; `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# The schema jars of the pinned Kafka release (resolved by test-deps): what protocol_specs/ follows.
SPECS_JARS = $(shell tr ':' '\n' < conformance/java/target/classpath.txt 2>/dev/null | \
  grep -E '/(kafka-clients|kafka-metadata|kafka-raft|kafka-group-coordinator|kafka-transaction-coordinator)-[0-9][^/]*\.jar$$')
PYTEST_ARGS ?=

.PHONY: install run lint test test-deps java-deps specs specs-import specs-check docs fuzz bench clean sim

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The benchmarks' peers (the bench extra) only where benchmarks run.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# The real clients the conformance suite drives: kcat (Debian), KafkaJS (npm), franz-go and sarama
# (Go modules, pinned in conformance/go/go.sum, cached in the user's Go caches), and the JVM side
# (Apache Kafka, kafka-clients, its tools, Streams: Maven resolves the release pinned in
# conformance/java/pom.xml into ~/.m2 and compiles the scenario drivers; Connect and the metadata shell
# are resolved apart, at the newest release that serves them).
test-deps: install
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq kcat >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq kcat)); \
	  else echo "kcat missing and not root: kcat scenarios will fail" >&2; fi; }
	@if [ -f conformance/node/package.json ]; then \
	  (cd conformance/node && npm ci --silent --no-audit --no-fund); fi
	@if command -v go >/dev/null 2>&1; then (cd conformance/go && go build -buildvcs=false -o bin/kcgo .); \
	  else echo "go missing: the franz-go and sarama scenarios will fail" >&2; fi
	$(MAKE) java-deps

# The JVM side alone (Apache Kafka for the benchmarks needs only this).
java-deps:
	cd conformance/java && mvn -q -B compile && mvn -q -B -f metadata-shell/pom.xml compile && \
	  mvn -q -B -f connect/pom.xml compile

# A single-node broker on 127.0.0.1:9092 with data under ./data (formatted on first start).
run: install
	$(BIN)/kafka-compat start --config config/server.properties

specs-import: test-deps
	$(BIN)/kafka-compat specs import $(SPECS_JARS)

specs: install
	$(BIN)/kafka-compat specs generate

specs-check: install
	$(BIN)/kafka-compat specs generate --check

# The configuration page, from the tables the broker validates against (a test checks it is current).
docs: install
	$(BIN)/kafka-compat config keys --markdown > docs/configuration.md

lint: install
	$(BIN)/ruff check .

test: test-deps specs-check lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

fuzz: install
	FUZZ_ITERATIONS=20000 $(BIN)/pytest -q tests/protocol/test_fuzz.py

# Every benchmark, each with its defaults; each prints one JSON line (Apache Kafka, the e2e peer,
# comes from java-deps).
bench: $(BENCH_STAMP) java-deps
	@set -e; for b in benchmarks/*.py; do echo "== $$b" >&2; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

SEEDS ?= 200
sim: install
	$(BIN)/python -m kafka_compat.testing.raft_sim --seeds $(SEEDS)
	$(BIN)/python -m kafka_compat.testing.cluster_sim --seeds $(SEEDS)
