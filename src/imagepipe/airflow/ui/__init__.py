"""imagepipe's pages inside the Airflow UI, registered by the Airflow plugin plugins/imagepipe_ui.py.

    plugin.py     the AirflowPlugin: the app's mount point, the Models nav entry, the run tab, the "Model report" link
    app.py        the FastAPI app: its routes, each behind Airflow's own auth; the rollback form's trigger
    pages.py      what each page shows, read from the registry and the lake's run records
    templates/    the pages' HTML (Jinja2, every value escaped)

Every page requires an Airflow user with read access to the pipeline DAG; the rollback form triggers the rollback DAG
through Airflow, as that user, so Airflow's permission to trigger it applies.
"""

# The DAGs' ids are their files' names (dags/<dag_id>.py).
PIPELINE_DAG = "image_classifier_pipeline"
ROLLBACK_DAG = "image_classifier_rollback"
SCORING_DAG = "image_batch_scoring"
# Where Airflow's api-server mounts the app.
URL_PREFIX = "/imagepipe"
