"""imagepipe's Airflow layer: the operators of the job tasks, the outputs as Assets, notifications, what the DAG files
build their DAGs from (dag_shape), the DAGs' macros (macros), the hooks that hold back or skip a task (task_guards),
the Python tasks between the jobs (run_steps), and the UI plugin. It imports the core and Airflow; the core never
imports it, and the executors' archive does not carry it."""
