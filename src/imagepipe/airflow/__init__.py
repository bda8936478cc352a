"""imagepipe's Airflow layer: the operators of the job tasks, the outputs as Assets, notifications, the DAGs' task
callables and macros (orchestration), and the UI plugin. It imports the core and Airflow; the core never imports it,
and the executors' archive does not carry it."""
