# immu-base/python:3 - stands in for python:3.x-slim (Debian's python3, pip, venv, pytest, pg8000).
FROM immu-base/debian:bookworm
# python:*-slim sets no WORKDIR either; say so explicitly so derived images start from /.
WORKDIR /
ENV PYTHONIOENCODING=utf-8
CMD ["python3"]
