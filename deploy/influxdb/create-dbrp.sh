#!/bin/sh
# Maps the InfluxQL database $INFLUX_DBRP_DATABASE (retention policy autogen)
# onto the bucket $INFLUX_BUCKET, once: InfluxDB 2.x answers InfluxQL on
# /query only through such a mapping. The influx CLI reads INFLUX_HOST,
# INFLUX_TOKEN and INFLUX_ORG from the environment.
set -eu
db="${INFLUX_DBRP_DATABASE:-vpp}"
if influx v1 dbrp list --db "$db" --hide-headers | grep -q .; then
  echo "DBRP mapping of database $db exists"
  exit 0
fi
bucket_id="$(influx bucket list --name "$INFLUX_BUCKET" --hide-headers | cut -f1)"
if [ -z "$bucket_id" ]; then
  echo "bucket $INFLUX_BUCKET not found" >&2
  exit 1
fi
influx v1 dbrp create --db "$db" --rp autogen --bucket-id "$bucket_id" --default
echo "mapped database $db (autogen) onto bucket $INFLUX_BUCKET ($bucket_id)"
