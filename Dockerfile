# Container image for linstor-provision-disk.
#
#   docker build -t ghcr.io/linstor-provision-disk/linstor-provision-disk:0.1.0 .
#
# The same image, without Docker: `cargo xtask image` writes it as an OCI archive and
# a docker-archive to target/image/ (see docs/install.md).
#
# Stage 1 runs `cargo xtask image --rootfs-only`: it builds the fully static musl
# binary (`cargo xtask dist`: LVM2's liblvm2cmd and libblkid linked in, no libudev),
# installs thin-provisioning-tools, and assembles the image's files in
# target/image/rootfs/: the binary, the homelab-helper symlink (the seed's pod spec
# runs `homelab-helper linstor-provision-disk`; the binary drops the prefix), /usr/bin/rm
# linking to the binary too (it then removes only the hold marker: the seed's recovery
# step `rm /tmp/.disk-provisioner-wait` works without a shell or coreutils),
# /usr/sbin/thin_check with exactly the shared libraries and loader `ldd` lists
# (LVM runs it whenever it activates a thin pool), /tmp (mode 1777) and the licence
# texts of all of it. Stage 2 is that folder on an empty image: no shell, no package
# manager, no lvm2 package and no /etc/lvm/lvm.conf (LVM's built-in defaults apply and
# the tool adds its own --config overrides to every command).
#
# The final stage must keep copying exactly target/image/rootfs/ and declare the same
# ENV, ENTRYPOINT and LABELs as xtask/src/image.rs: `cargo test -p xtask` checks it.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
RUN rustup target add x86_64-unknown-linux-musl
COPY . .
RUN cargo xtask image --rootfs-only

FROM scratch
COPY --from=build /src/target/image/rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/usr/local/bin/linstor-provision-disk"]
LABEL org.opencontainers.image.title="linstor-provision-disk" \
      org.opencontainers.image.description="Prepares a node's GPT partition as an LVM thin pool for a LINSTOR satellite" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/linstor-provision-disk/linstor-provision-disk" \
      org.opencontainers.image.licenses="GPL-2.0-only AND LGPL-2.1-only AND GPL-3.0-or-later AND LGPL-2.1-or-later AND GPL-3.0-or-later WITH GCC-exception-3.1 AND MIT AND MPL-2.0"
