# The two commands of the README are `make demo` and `make test`; each bootstraps what it needs.
.PHONY: bootstrap demo test test-cluster up down status ui web lint bench

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@scripts/demo.sh

test: bootstrap
	@scripts/test.sh

# The three fault tests alone (docs/SCALE.md): a Kafka broker, a Spark worker and a Flink
# TaskManager killed mid-stream. `make test` runs them too.
test-cluster: bootstrap
	@scripts/test.sh tests/cluster tests/lake/test_spark_worker_loss.py tests/streaming/test_flink_cluster.py

up: bootstrap
	@.venv/bin/netflix-assets stack up

down:
	@.venv/bin/netflix-assets stack down

status:
	@.venv/bin/netflix-assets stack status

ui: bootstrap
	@. scripts/env.sh && dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

web: bootstrap
	@.venv/bin/netflix-assets stack up && .venv/bin/netflix-assets stack up edge && .venv/bin/netflix-assets web

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: bootstrap
	@. scripts/env.sh && for b in benchmarks/*.py; do python $$b; done
