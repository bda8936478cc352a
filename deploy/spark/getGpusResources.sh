#!/usr/bin/env bash
# Spark GPU discovery script (the contract of Spark's examples/src/main/scripts/getGpusResources.sh): prints the
# worker's NVIDIA GPU addresses as {"name": "gpu", "addresses": ["0", ...]} for spark.worker.resource.gpu.*.
set -euo pipefail
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, - | sed 's/,/","/g')
echo "{\"name\": \"gpu\", \"addresses\": [\"${addresses}\"]}"
