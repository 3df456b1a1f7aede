# PostgreSQL from Debian's own package, for machines where no registry serves the postgres image
# (compose.host.yaml builds it). Trust auth on 127.0.0.1 only: with host networking nothing else reaches it.
ARG BASE_IMAGE=frugal-base
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
USER postgres
RUN /usr/lib/postgresql/15/bin/initdb --pgdata=/var/lib/postgresql/data --username=frugal --auth=trust \
 && echo "listen_addresses = '127.0.0.1'" >> /var/lib/postgresql/data/postgresql.conf
ENV PGPORT=55432
HEALTHCHECK --interval=2s --timeout=3s --retries=30 CMD ["/usr/lib/postgresql/15/bin/pg_isready", "-h", "127.0.0.1", "-U", "frugal"]
CMD ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data", "-k", "/tmp"]
