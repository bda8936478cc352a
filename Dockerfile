# imagepipe's one image, for the Airflow services and the Spark master and workers alike, so executors have the
# very Python packages the driver has. The library is installed editable from /opt/airflow/src, which
# docker-compose.yaml mounts over with the checkout's src/ (beside dags/, plugins/ and spark_jobs/), and executors get
# it as a --py-files archive at each task, so a code change needs no rebuild; a change to requirements.txt does.
#
# The base tag follows apache-airflow in requirements.txt and the project's Python (tests/deploy checks both).

# Spark 4 needs Java 17+: a pinned JRE image, not the distribution's package, whose Java version moves with Debian.
FROM eclipse-temurin:17.0.13_11-jre-jammy AS java

FROM apache/airflow:3.3.2-python3.11

USER root
COPY --from=java /opt/java/openjdk /opt/java/openjdk
ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/java/openjdk/bin:$PATH
COPY deploy/spark/getGpusResources.sh /opt/spark/scripts/getGpusResources.sh
# CJK glyphs for the report's charts (class names are folder names, in any script).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
# Folders the named volumes start from: owned by airflow, writable by group 0 like the rest of the image, so the
# stack also runs under another AIRFLOW_UID.
RUN chmod 0755 /opt/spark/scripts/getGpusResources.sh \
 && mkdir -p /opt/imagepipe/data /opt/imagepipe/model_cache /opt/imagepipe/spark-work \
 && chown -R airflow:0 /opt/imagepipe \
 && chmod -R g+rwX /opt/imagepipe
USER airflow

COPY requirements.txt constraints.txt /tmp/imagepipe/
RUN pip install --no-cache-dir -r /tmp/imagepipe/requirements.txt -c /tmp/imagepipe/constraints.txt

# The library as an installed package (plugins/ holds Airflow plugins only): editable, so the mounted src/ is what
# every Airflow process imports.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/
COPY --chown=airflow:0 src /opt/airflow/src
RUN pip install --no-cache-dir --no-deps -e /opt/airflow

# The jars Spark's jobs load beside pyspark's own (jars.lock: Iceberg's runtime, S3A, the catalog's JDBC drivers),
# fetched from Maven Central and checked against their sha256 at build, never at run time: one folder on every node,
# on the drivers' and the executors' class path.
ENV IMAGEPIPE_JARS_DIR=/opt/imagepipe/jars
COPY --chown=airflow:0 jars.lock /opt/airflow/
RUN python -m imagepipe.jars fetch
