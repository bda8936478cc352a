"""Airflow plugin: imagepipe's models, version reports and run outcomes inside the Airflow UI. The plugin and its
pages live in the library (imagepipe.airflow.ui): Airflow imports every file here under its bare name, in every
process."""

from imagepipe.airflow.ui.plugin import ImagepipeUIPlugin

__all__ = ["ImagepipeUIPlugin"]
