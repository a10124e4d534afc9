# Container image for linstor-provision-disk.
#
#   docker build -t ghcr.io/your-org/linstor-provision-disk:latest .
#
# Stage 1 builds the fully static musl binary with `cargo xtask dist` (LVM2's
# liblvm2cmd linked in, no libudev: partitions are found through sysfs and the udev
# database). Stage 2 is Debian slim plus thin-provisioning-tools: LVM runs
# `thin_check` (/usr/sbin/thin_check) whenever it activates a thin pool. No lvm2
# package and no /etc/lvm/lvm.conf: LVM's built-in defaults apply and the tool adds
# its own --config overrides (no udev sync, no dmeventd) to every command.
#
# The seed tool's pod spec runs `homelab-helper linstor-provision-disk`; the
# symlink below makes that name resolve, and the binary drops the prefix.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
RUN rustup target add x86_64-unknown-linux-musl
COPY . .
# Leaves the static binary at target/dist/linstor-provision-disk.
RUN cargo xtask dist

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends thin-provisioning-tools \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/dist/linstor-provision-disk /usr/local/bin/linstor-provision-disk
RUN ln -s linstor-provision-disk /usr/local/bin/homelab-helper \
    && /usr/local/bin/linstor-provision-disk --version \
    && /usr/local/bin/homelab-helper linstor-provision-disk --version \
    && test -x /usr/sbin/thin_check
ENTRYPOINT ["/usr/local/bin/linstor-provision-disk"]
