# The Rapport worker image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
RUN pip install --no-cache-dir .
ENV RAPPORT_HOME=/var/lib/rapport
ENTRYPOINT ["rapport"]
CMD ["worker"]
