# immu-base/busybox:1 - Debian's static busybox on scratch: tiny, starts in milliseconds.
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
CMD ["sh"]
