# Builds the static gitops-flow binary and ships it on a distroless base that
# carries CA certificates. Released versions of the action use the prebuilt
# multi-arch image from GHCR instead of building this on every run.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "$target" \
    && cargo build --release --locked --target "$target" \
    && cp "target/$target/release/gitops-flow" /gitops-flow

# Docker container actions run as root (the runner's requirement); the workspace
# then belongs to another user, which gitops-flow handles.
# distroless publishes no version tags; pin the digest with Dependabot/Renovate.
# hadolint ignore=DL3007
FROM gcr.io/distroless/static-debian12:latest
COPY --from=build /gitops-flow /gitops-flow
ENTRYPOINT ["/gitops-flow"]
