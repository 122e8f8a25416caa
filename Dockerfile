# vireid on GPU hosts: docker build -t vireid . && docker run --gpus all --ipc=host ...
# The official PyTorch CUDA runtime image brings torch/torchvision for the GPU; the project
# installs through the same scripts/install.sh as the README and CI (VIREID_SYSTEM=1: into
# the image's interpreter, which keeps the image's CUDA torch: no torch pin applies to an
# interpreter that has one). Weights live in the /weights volume: TORCH_HOME=/weights/torch,
# so torchvision's ImageNet file is read from (or downloaded once into)
# /weights/torch/hub/checkpoints and kept across containers.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIREID_SYSTEM=1 \
    VIREID_EXTRAS=blazepose \
    TORCH_HOME=/weights/torch \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/vireid
COPY . /opt/vireid
# the volumes are world-writable (sticky) so that `docker run --user $(id -u):$(id -g)` (host
# volumes owned by the host user) and the default user 1000 can both write what they own
RUN bash scripts/install.sh \
    && useradd --create-home --uid 1000 vireid \
    && mkdir -p /data /cache /weights/torch/hub/checkpoints /runs \
    && chown -R 1000:1000 /data /cache /weights /runs \
    && chmod -R 1777 /cache /weights /runs

USER 1000:1000
VOLUME ["/data", "/cache", "/weights", "/runs"]
ENTRYPOINT []
CMD ["vireid-prep", "--help"]
