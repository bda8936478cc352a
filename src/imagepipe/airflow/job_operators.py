"""The tasks that run spark_jobs modules. SparkJobOperator: the provider's SparkSubmitOperator, which ships the
library when the task runs and stops the whole Spark application when the task is killed. LocalJobOperator: a job
that does no Spark work (promote_model moves a pointer), run with the worker's Python, so the task does not pay for a
JVM and a Spark session. Both name their job, whose file is found when the task runs, where the worker keeps the jobs
(IMAGEPIPE_SPARK_JOBS_DIR), and both fail at once, without retries, when the job refuses its input."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

import psutil
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.hooks.subprocess import SubprocessHook
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from imagepipe.errors import REFUSED
from imagepipe.spark import driver_conf

# The line a job prints when it refuses its input (cli.run and the jobs' argument parser): "<job>: error: <why>".
REFUSAL_LINE = re.compile(r"^[\w.-]+: error: .+")


def refusal(job: str, exit_status: int | None, lines: Iterable[str]) -> str | None:
    """The job's one-line refusal when it ended with the refusal exit status: no retry can change the answer, so
    the task fails with that line, at once. None for any other ending (a fault: retried)."""
    if exit_status != REFUSED:
        return None
    refusals = [line for line in lines if REFUSAL_LINE.match(line)]
    return refusals[-1] if refusals else f"{job}: refused its input (exit status {REFUSED}); see the log above"


class SparkJobOperator(SparkSubmitOperator):
    """spark-submit of one job. The deployment's Spark properties (IMAGEPIPE_SPARK_CONF, and the GPUs of `gpus` jobs)
    are read when the task runs, from the worker's environment, not when the DAG file is parsed."""

    def __init__(self, *, job: str, gpus: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.job = job  # a module of spark_jobs/
        self.gpus = gpus  # the job runs torch: it gets the deployment's GPUs, where it has them

    def execute(self, context):
        """Find the job's file, build the --py-files archive and read the code version now, not while templates
        render: rendering has no side effects, and the archive holds the code this worker runs."""
        from imagepipe import settings, shipping

        self.application = str(settings.spark_job(self.job))
        self.py_files = shipping.py_files_archive()
        # Read here, where the checkout is: the driver imports the library from the archive.
        self.env_vars = {**(self.env_vars or {}), "IMAGEPIPE_CODE_VERSION": settings.code_version()}
        try:
            return super().execute(context)
        except AirflowException:
            process = self._hook._submit_sp if self._hook else None
            refused = None if process is None else refusal(self.name, process.returncode,
                                                           self._hook._last_submit_log_lines)
            if refused is None:
                raise  # a fault (a crash, a lost executor, S3 errors after botocore's retries): retried
            raise AirflowFailException(refused) from None

    def _get_hook(self):
        """The hook with, read where the task runs: the lake's Spark conf (jars, catalog, S3A), then the cluster's
        properties every job needs (IMAGEPIPE_SPARK_CONF), then the task's own (the run's resources), then, for a job
        that runs torch, the GPUs."""
        from imagepipe import settings, tables

        hook = super()._get_hook()
        gpus = settings.gpu_spark_conf() if self.gpus else {}
        hook._conf = driver_conf(hook._connection["master"],
                                 {**tables.spark_conf(), **settings.cluster_spark_conf(), **hook._conf, **gpus},
                                 self.job)
        return hook

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


class LocalJobOperator(BaseOperator):
    """`python <the job's file> <application_args>` on the worker, its output in the task's log."""

    template_fields = ("application_args",)

    def __init__(self, *, job: str, application_args: list[str], **kwargs):
        super().__init__(**kwargs)
        self.job = job  # a module of spark_jobs/
        self.application_args = application_args
        self._hook: SubprocessHook | None = None

    def execute(self, context) -> None:
        from imagepipe import settings

        application = settings.spark_job(self.job)
        self._hook = SubprocessHook()
        # The worker's own environment: the library, the object store's settings and credentials, as for the gate.
        result = self._hook.run_command([sys.executable, str(application), *self.application_args])
        if result.exit_code == 0:
            return
        refused = refusal(self.job, result.exit_code, [result.output])
        if refused is not None:
            raise AirflowFailException(refused)
        raise AirflowException(f"{application} exited with status {result.exit_code}: {result.output}")

    def on_kill(self) -> None:
        if self._hook is not None:
            self._hook.send_sigterm()
