# immu-base/debian:bookworm - the debootstrapped rootfs plus this machine's CA bundle.
# ROOTFS is the ID of the image `docker import`ed from the cached rootfs tarball.
ARG ROOTFS
FROM ${ROOTFS}
# The host bundle includes the TLS-intercepting CA this machine's traffic goes through;
# without it pip/requests inside containers fail certificate verification.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
CMD ["bash"]
# The import's own marker (see imported_rootfs in base-images.sh): not inherited downstream.
LABEL immu.base.rootfs=""
