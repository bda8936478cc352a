"""The pipeline's Spark task: the provider's SparkSubmitOperator, which ships the library when the task runs, fails
at once when the job refuses its input, and stops the whole Spark application when the task is killed."""

from __future__ import annotations

import re

import psutil
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from imagepipe.errors import REFUSED

# The line a job prints when it refuses its input (cli.run and the jobs' argument parser): "<job>: error: <why>".
REFUSAL_LINE = re.compile(r"^[\w.-]+: error: .+")


class SparkJobOperator(SparkSubmitOperator):
    def execute(self, context):
        """Build the --py-files archive and read the code version now, not while templates render: rendering has no
        side effects, and the archive holds the code this worker runs."""
        from imagepipe import settings, shipping

        self.py_files = shipping.py_files_archive()
        # Read here, where the checkout is: the driver imports the library from the archive.
        self.env_vars = {**(self.env_vars or {}), "IMAGEPIPE_CODE_VERSION": settings.code_version()}
        try:
            return super().execute(context)
        except AirflowException:
            refusal = self.refusal()
            if refusal is None:
                raise  # a fault (a crash, a lost executor, S3 errors after botocore's retries): retried
            raise AirflowFailException(refusal) from None

    def refusal(self) -> str | None:
        """The job's one-line refusal when spark-submit ended with the refusal exit status: no retry can change the
        answer, so the task fails with that line, at once."""
        process = self._hook._submit_sp if self._hook else None
        if process is None or process.returncode != REFUSED:
            return None
        lines = [line for line in self._hook._last_submit_log_lines if REFUSAL_LINE.match(line)]
        return lines[-1] if lines else f"{self.name}: refused its input (exit status {REFUSED}); see the log above"

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
