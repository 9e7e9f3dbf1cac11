"""The indicators on Apache Spark: the same SQL (research/indicators.py) over the same
dataset, for when CBS pools many cities' datasets on a cluster (docs/research.md,
"On Spark").

    spark-submit --py-files research.zip research/spark.py DATASET [--raw]
    python -m research.spark DATASET [--raw]        (local mode, with pyspark installed)

prints {"indicators": {name: rows}} as JSON on stdout: suppressed as the report is
(research/disclosure.py), or as computed with --raw (for the secure environment only).
"""
from __future__ import annotations

import argparse
import json
import sys

from research import columns
from research.columns import PARTITIONED, SNAPSHOTS
from research.indicators import INDICATORS


def compute(spark, folder: str) -> dict[str, list[dict]]:
    """Every indicator's rows, as computed; `folder` a path Spark reads (local or a
    cluster's file system). Only the months the manifest names are read."""
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    manifest = spark.read.option("multiLine", True).json(f"{folder}/dataset.json").first()
    months = list(manifest["months"]) if manifest is not None else []
    for name in PARTITIONED:
        path = f"{folder}/{name}"
        if months:
            frame = spark.read.option("basePath", path).parquet(
                *[f"{path}/month={month}" for month in months])
        else:
            frame = spark.createDataFrame([], columns.sql_schema(name, with_month=True))
        frame.createOrReplaceTempView(name)
    for name in SNAPSHOTS:
        if months:
            frame = spark.read.parquet(f"{folder}/{name}.parquet")
        else:
            frame = spark.createDataFrame([], columns.sql_schema(name))
        frame.createOrReplaceTempView(name)
    return {i.name: [row.asDict() for row in spark.sql(i.sql).collect()]
            for i in INDICATORS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="research.spark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a dataset folder made by `stadsmunt research "
                                        "export` (every month's folders present)")
    parser.add_argument("--raw", action="store_true",
                        help="the figures as computed, without suppression")
    args = parser.parse_args(argv)
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.appName("stadsmunt-indicators")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        found = compute(spark, args.dataset)
    finally:
        spark.stop()
    if not args.raw:
        from research.indicators import suppressed
        found = {i.name: suppressed(i, found[i.name]) for i in INDICATORS}
    json.dump({"indicators": found}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
