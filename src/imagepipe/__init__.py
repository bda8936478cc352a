"""imagepipe: the library shared by the DAGs and the Spark jobs, in three layers (tests/unit/test_structure.py
enforces them):

    imagepipe.*          the core: run parameters, the lake and its tables, images, ingest, featurizer, fine-tuning,
                         training, evaluation, gate, registry, reports, drift, datasets. Imports only the core; the
                         standard library at top level (torch, pyspark, boto3 and pandas inside the functions that
                         need them), so a DAG file can import it at parse time. The only part the Spark executors get.
    imagepipe.airflow    what Airflow runs: operators, assets, notifications, what the DAG files build DAGs from
                         (dag_shape), their macros, task guards and Python tasks (macros, task_guards, run_steps), the
                         UI plugin. Imports the core and Airflow.
    imagepipe.dev        the laptop's tools: the embedded S3 endpoint, sample images, the packaged pretrained weights.
                         Imports the core.
"""
