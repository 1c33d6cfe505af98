# kafka-compat in a container: `docker build -t kafka-compat .`, or the 3-node cluster in
# docker-compose.yml. Configure with Kafka's keys as KAFKA_* variables (KAFKA_NODE_ID=1 -> node.id)
# and CLUSTER_ID (the same on every node); data lives in the volume.
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY kafka_compat ./kafka_compat
RUN pip install --no-cache-dir . && rm -rf /src

VOLUME /var/lib/kafka-compat
ENV KAFKA_LOG_DIRS=/var/lib/kafka-compat/data
EXPOSE 9092 9093 9404
CMD ["kafka-compat", "start"]
