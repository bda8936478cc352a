"""How long moto's S3 server takes to list N keys under one prefix, page by page, as ingest lists its source
(imagepipe.object_store.list_objects): what an ingest run on the laptop's embedded S3 waits for before fetching.

    .venv/bin/python bench/moto_listing.py
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from job_fixed_costs import start_s3  # noqa: E402  (bench/ is the script's folder)

SIZES = (10_000, 101_000)


def main() -> None:
    server, _ = start_s3()
    from imagepipe.object_store import list_objects, s3_client

    client = s3_client(max_pool_connections=32)
    client.create_bucket(Bucket="listing")
    written = 0
    try:
        for size in SIZES:
            with ThreadPoolExecutor(32) as pool:  # one-byte objects: only the keys matter to a listing
                list(pool.map(lambda i: client.put_object(Bucket="listing", Key=f"images/class_{i % 10}/{i:07d}.png",
                                                          Body=b"x"), range(written, size)))
            written = size
            started = time.perf_counter()
            listed = sum(1 for _ in list_objects(client, "listing", "images/"))
            print(f"{listed} keys listed in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
