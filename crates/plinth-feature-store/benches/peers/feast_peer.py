"""Feast 0.67, the feature store bench's peer, driven by `benches/feature_store.rs` with the peers venv.

Subcommands (each prints one JSON line on stdout, the last line, for the bench to read):
  setup REPO --source PARQUET --redis HOST:PORT,db=N --features N
      writes a Feast repo (local provider, Redis online store, DuckDB offline store), applies an entity
      `driver` (driver_id int64), a FileSource over PARQUET and a view `driver_stats` with float64
      features f0..f{N-1} and no TTL, then materializes every row into Redis; prints the seconds taken
      by apply and by materialize.
  offline REPO --entities PARQUET --features N [--runs RUNS]
      reads the entity rows into pandas (not timed), runs `get_historical_features(...).to_df()` on
      the DuckDB offline store once to warm up (timed apart: the first call), then times RUNS more;
      prints the median, every run, the first call and the rows.
The online server is Feast's own CLI (`feast -c REPO serve ...`), started by the bench.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

FEATURE_STORE_YAML = """project: plinth_bench
provider: local
registry: data/registry.db
online_store:
  type: redis
  connection_string: "{redis}"
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""


def definitions(source, features):
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    stats = FileSource(path=source, timestamp_field="event_timestamp")
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(0),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(features)],
        source=stats,
        online=True,
    )
    return driver, view


def setup(args):
    from feast import FeatureStore

    os.makedirs(os.path.join(args.repo, "data"), exist_ok=True)
    with open(os.path.join(args.repo, "feature_store.yaml"), "w") as out:
        out.write(FEATURE_STORE_YAML.format(redis=args.redis))
    store = FeatureStore(repo_path=args.repo)
    started = time.perf_counter()
    store.apply(list(definitions(os.path.abspath(args.source), args.features)))
    applied = time.perf_counter() - started
    started = time.perf_counter()
    store.materialize(
        start_date=datetime(2000, 1, 1, tzinfo=timezone.utc),
        end_date=datetime(2100, 1, 1, tzinfo=timezone.utc),
    )
    materialized = time.perf_counter() - started
    return {"apply_s": applied, "materialize_s": materialized}


def offline(args):
    import pandas as pd
    from feast import FeatureStore

    store = FeatureStore(repo_path=args.repo)
    entity_df = pd.read_parquet(args.entities)
    refs = [f"driver_stats:f{i}" for i in range(args.features)]
    # One warm-up (registry, DuckDB connection, imports on first use), as the other sides get; its time
    # is what a job that calls it once per process pays, reported apart.
    started = time.perf_counter()
    store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    first = time.perf_counter() - started
    runs = []
    for _ in range(max(1, args.runs)):
        started = time.perf_counter()
        frame = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
        runs.append(time.perf_counter() - started)
    return {
        "seconds": statistics.median(runs),
        "runs": runs,
        "first": first,
        "rows": int(len(frame)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("repo")
    p.add_argument("--source", required=True)
    p.add_argument("--redis", required=True)
    p.add_argument("--features", type=int, required=True)
    p = sub.add_parser("offline")
    p.add_argument("repo")
    p.add_argument("--entities", required=True)
    p.add_argument("--features", type=int, required=True)
    p.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    result = setup(args) if args.command == "setup" else offline(args)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
