"""The raw point-in-time join ceiling for the feature store bench: DuckDB's ASOF LEFT JOIN of the entity
rows with the feature rows on driver_id and entity time >= feature time (no TTL: the bench's view has
none). Warms up once (same query, result dropped), then times RUNS runs into an Arrow table, writes the
last result to OUT (not timed) for the bench to compare with Plinth's, and prints one JSON line with the
median and every run.

usage: duckdb_asof.py --features PARQUET --entities PARQUET --columns N --out PARQUET [--runs RUNS]
"""

import argparse
import json
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True)
    parser.add_argument("--entities", required=True)
    parser.add_argument("--columns", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    import duckdb
    import pyarrow.parquet as pq

    selected = ", ".join(f"f.f{i}" for i in range(args.columns))
    sql = (
        f"SELECT e.row_id, e.driver_id, e.event_timestamp, {selected} "
        f"FROM read_parquet('{args.entities}') e "
        f"ASOF LEFT JOIN read_parquet('{args.features}') f "
        "ON e.driver_id = f.driver_id AND e.event_timestamp >= f.event_timestamp"
    )
    con = duckdb.connect()
    # A relation's `to_arrow_table()` runs the query and reads the whole result without the extra copy
    # of a DB-API `execute()` result (DuckDB 2.0 warns about that one).
    con.sql(sql).to_arrow_table()  # warm-up
    runs = []
    for _ in range(max(1, args.runs)):
        started = time.perf_counter()
        table = con.sql(sql).to_arrow_table()
        runs.append(time.perf_counter() - started)
    pq.write_table(table, args.out)
    result = {
        "seconds": statistics.median(runs),
        "runs": runs,
        "rows": table.num_rows,
        "duckdb": duckdb.__version__,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
