# The webpubsub-fleet image: one binary, run as a non-root user. Pods of a sharded load run
# (`webpubsub-fleet k8s ...`) start it with `load ...`; `hub` runs the local hub.
#
#   docker build -t webpubsub-fleet:dev .
#   docker run --rm webpubsub-fleet:dev --help

# ---- build --------------------------------------------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them: build a stub crate with the
# real manifest and lock file, then the real sources.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches examples \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in codec hub_load client_idle; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin webpubsub-fleet \
    && rm -rf src
COPY src ./src
# Make the real sources newer than the stub's build.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin webpubsub-fleet \
    && cp target/release/webpubsub-fleet /webpubsub-fleet

# ---- run ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# rustls carries its own web PKI roots: no CA bundle or OpenSSL needed. A shell stays, so
# `kubectl exec POD -- sh -c 'ulimit -n'` can check the fd limit a pod got.
RUN groupadd --gid 10001 fleet && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin fleet
COPY --from=build /webpubsub-fleet /usr/local/bin/webpubsub-fleet
USER 10001:10001
WORKDIR /tmp
# The coordinator of a sharded run (shard 0) and the local hub's usual port.
EXPOSE 7070 8080
ENTRYPOINT ["/usr/local/bin/webpubsub-fleet"]
CMD ["--help"]
