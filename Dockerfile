# Builds the static gitops-flow binary and ships it in two images:
#   (default, last stage) the GitHub action: distroless with CA certificates only;
#   `--target cli`: the same binary with git and a shell, for GitLab CI jobs and any
#   shell (the `git` backend publishes with the git CLI).
# Released versions use prebuilt multi-arch images from GHCR instead of building this
# on every run; the release workflow compiles each architecture natively and passes
# the binaries in with `--build-arg BINARY_FROM=prebuilt` (no Rust under emulation).
ARG BINARY_FROM=build

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

# Binaries built outside (dist/<arch>/gitops-flow, one per TARGETARCH).
FROM scratch AS prebuilt
ARG TARGETARCH
COPY dist/${TARGETARCH}/gitops-flow /gitops-flow

# hadolint ignore=DL3006
FROM ${BINARY_FROM} AS binary

# The shell image: GitLab CI runs its job scripts in it (no ENTRYPOINT on purpose).
FROM alpine:3.22 AS cli
# Alpine removes old package versions from its mirrors, so exact pins would break
# the build; the base image tag pins the release.
# hadolint ignore=DL3018
RUN apk add --no-cache git ca-certificates
COPY --from=binary /gitops-flow /usr/local/bin/gitops-flow
CMD ["gitops-flow", "--help"]

# Docker container actions run as root (the runner's requirement); the workspace
# then belongs to another user, which gitops-flow handles.
# distroless publishes no version tags; pin the digest with Dependabot/Renovate.
# hadolint ignore=DL3007
FROM gcr.io/distroless/static-debian12:latest AS action
COPY --from=binary /gitops-flow /gitops-flow
ENTRYPOINT ["/gitops-flow"]
