"""The pipeline's Spark jobs, one standalone program per DAG task: parse arguments, read, transform, write."""
