# The Rapport worker image (used by docker-compose.yml). Pinned base image; runs as a non-root user.
FROM python:3.11.13-slim-bookworm
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/rapport rapport
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
RUN pip install --no-cache-dir .
ENV RAPPORT_HOME=/var/lib/rapport
USER rapport
ENTRYPOINT ["rapport"]
CMD ["worker"]
