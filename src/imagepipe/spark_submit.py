"""The pipeline's Spark task: the provider's SparkSubmitOperator, stopping the whole Spark application when the
task is killed or times out."""

from __future__ import annotations

import psutil
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator


class SparkJobOperator(SparkSubmitOperator):
    def on_kill(self) -> None:
        """Kill spark-submit and every process it started. In client mode the driver is spark-submit's JVM, and the
        job's Python driver and Python workers are its children: the provider kills the JVM alone, which leaves
        them running (and writing to the lake) beside the retry."""
        process = self._hook._submit_sp if self._hook else None
        children = []
        if process is not None and process.poll() is None:
            try:
                children = psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        super().on_kill()
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=30)
