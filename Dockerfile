# panacea-locust image for Kubernetes (k8s/): the same locustfile for master and workers.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.txt locustfile.py slo.toml ./
COPY panacea_locust ./panacea_locust
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . && useradd --create-home locust && chown -R locust /app
USER locust
EXPOSE 8089 5557
ENTRYPOINT ["locust"]
