-- The lake's Iceberg catalog (IMAGEPIPE_CATALOG_URI) in a database of its own beside Airflow's; Iceberg's JDBC
-- catalog creates its tables in it at the first job.
CREATE DATABASE imagepipe_catalog OWNER airflow;
