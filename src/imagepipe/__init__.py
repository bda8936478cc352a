"""imagepipe: the library shared by the DAGs and the Spark jobs.

Modules here import only the standard library at top level; torch, pyspark, boto3 and pandas are imported inside
the functions that need them, so a DAG file can import anything from this package at parse time.
"""
