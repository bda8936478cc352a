"""Ingest benchmark: the ingest_images Spark job against `aws s3 cp --recursive` (awscli, default settings), side by
side in one run on the same objects in the embedded S3 endpoint; plus the job's peak driver memory at N and 4N.

Starts its own embedded S3 on a free port, writes N distinct JPEGs of about 20 KiB under one prefix (labelled by
folder), times the aws cli copying them to local disk, then times the ingest job (spark-submit, local[*]) taking
them into a fresh lake, polling the driver's Python and JVM processes for their resident memory. For scale, it also
measures the endpoint's own ceiling in the same run: boto3 GETs of every object from 32 threads, bodies read and
dropped (no decoding, no writing), the most any client here could take from this server.

    .venv/bin/python bench/ingest_s3.py --objects 5000 --scale 4
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))


def small_jpeg(seed: int) -> bytes:
    """A distinct 160x160 JPEG of about 20 KiB."""
    from PIL import Image

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (80, 80), rng.randbytes(80 * 80 * 3)).resize((160, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed_objects(client, bucket: str, prefix: str, count: int) -> int:
    def put(index: int) -> int:
        body = small_jpeg(index)
        client.put_object(Bucket=bucket, Key=f"{prefix}/label{index % 4}/img_{index:06d}.jpg", Body=body)
        return len(body)

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(put, range(count)))


def endpoint_ceiling(client, bucket: str, prefix: str, count: int) -> float:
    """Objects/s of bare GETs (body read, nothing else) from 32 threads."""
    keys = [f"{prefix}/label{index % 4}/img_{index:06d}.jpg" for index in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        for _ in pool.map(lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(), keys):
            pass
    return count / (time.perf_counter() - started)


def peak_rss_while(process: subprocess.Popen) -> dict:
    """Peak resident memory of the driver's JVM (spark-submit execs java) and of the Python driver it starts,
    polled every 50 ms."""
    import psutil

    peaks = {"python_driver_mib": 0.0, "jvm_driver_mib": 0.0}
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            members = []
        for member in members:
            try:  # a Python worker may exit between listing and reading it
                if "java" in member.name():
                    kind = "jvm_driver_mib"
                elif "python" in member.name() and any(part.endswith("ingest_images.py") for part in member.cmdline()):
                    kind = "python_driver_mib"  # not the executors' Python workers (pyspark.daemon)
                else:
                    continue
                peaks[kind] = max(peaks[kind], member.memory_info().rss / 2**20)
            except psutil.Error:
                continue
        time.sleep(0.05)
    return peaks


def run_ingest(env: dict, bucket: str, prefix: str, lake: str, run_id: str) -> dict:
    command = [str(Path(sys.executable).with_name("spark-submit")), "--master", f"local[{os.cpu_count()}]",
               "--driver-memory", "2g", str(PROJECT / "spark_jobs" / "ingest_images.py"),
               "--source-uri", f"s3://{bucket}/{prefix}/", "--run-id", run_id, "--lake-root", lake,
               "--window-end", "2100-01-01T00:00:00Z"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = {}
    watcher = threading.Thread(target=lambda: peaks.update(peak_rss_while(process)))
    watcher.start()
    _, stderr = process.communicate()
    watcher.join()
    if process.returncode:
        raise RuntimeError(f"ingest failed: {stderr[-2000:]}")
    report = json.loads((Path(lake) / "runs" / run_id / "ingest.json").read_text())
    return {"wall_seconds": time.perf_counter() - started, "report_seconds": report["seconds"],
            "ingested": report["ingested"], **peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--scale", type=int, default=4, help="also ingest objects x scale, for driver memory")
    parser.add_argument("--json")
    args = parser.parse_args()

    from imagepipe.dev.embedded_s3 import environment, serve
    from imagepipe.object_store import s3_client

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    port = free_port()
    server = serve(port, work / "moto.log")
    s3_env = environment(port)
    os.environ.update(s3_env)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    results = {"machine": f"{os.uname().nodename} {os.cpu_count()} cores", "objects": args.objects}
    try:
        client = s3_client(env["AWS_ENDPOINT_URL"], 32)
        client.create_bucket(Bucket="bench")
        total_bytes = seed_objects(client, "bench", "small", args.objects)
        results["mean_object_kib"] = total_bytes / args.objects / 1024

        started = time.perf_counter()
        subprocess.run(["aws", "s3", "cp", "--recursive", "--quiet", "s3://bench/small/", str(work / "copy"),
                        "--endpoint-url", env["AWS_ENDPOINT_URL"]], env=env, check=True)
        seconds = time.perf_counter() - started
        results["awscli_objects_per_s"] = args.objects / seconds
        results["awscli_mb_per_s"] = total_bytes / seconds / 1e6
        results["endpoint_ceiling_objects_per_s"] = endpoint_ceiling(client, "bench", "small", args.objects)
        print(json.dumps(results), flush=True)

        ingest = run_ingest(env, "bench", "small", str(work / "lake"), "bench_n")
        results["ingest_n"] = ingest
        # Wall time of the whole spark-submit, JVM start included: the conservative figure.
        results["ingest_objects_per_s"] = args.objects / ingest["wall_seconds"]
        results["ingest_mb_per_s"] = total_bytes / ingest["wall_seconds"] / 1e6
        results["ingest_vs_awscli"] = results["ingest_objects_per_s"] / results["awscli_objects_per_s"]
        results["ingest_in_job_objects_per_s"] = args.objects / ingest["report_seconds"]
        print(json.dumps(results), flush=True)

        if args.scale > 1:
            seed_objects(client, "bench", "large", args.objects * args.scale)
            scaled = run_ingest(env, "bench", "large", str(work / "lake4"), "bench_4n")
            results["ingest_scaled"] = {"objects": args.objects * args.scale, **scaled}
            # The fixed cost (JVM start, listing, session, commit) cancels out between the two runs.
            results["ingest_marginal_objects_per_s"] = (args.objects * (args.scale - 1)) / (
                scaled["wall_seconds"] - ingest["wall_seconds"])
            print(json.dumps(results), flush=True)
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
