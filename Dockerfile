# vireid on GPU hosts: docker build -t vireid . && docker run --gpus all --ipc=host ...
# The official PyTorch CUDA runtime image brings torch/torchvision for the GPU; the project
# installs through the same scripts/install.sh as the README and CI (VIREID_SYSTEM=1: into
# the image's interpreter, keeping its CUDA torch). Nothing is downloaded at run time.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIREID_SYSTEM=1 \
    VIREID_EXTRAS=blazepose

WORKDIR /opt/vireid
COPY . /opt/vireid
RUN bash scripts/install.sh \
    && useradd --create-home --uid 1000 vireid \
    && mkdir -p /data /cache /weights /runs \
    && chown 1000:1000 /data /cache /weights /runs

USER 1000:1000
VOLUME ["/data", "/cache", "/weights", "/runs"]
ENTRYPOINT []
CMD ["vireid-prep", "--help"]
