# streamer on Jetson Orin (JetPack 6.1/6.2: L4T r36.4, TensorRT 10.3, CUDA 12.6, Ubuntu 22.04, Python 3.10).
#   docker build -f docker/jetson.Dockerfile -t streamer:jetson .
#   docker run --rm -it --runtime nvidia --network host -v $PWD/engines:/app/engines streamer:jetson
# Engines are built inside the running container on the device (see docs/jetson.md), never in
# `docker build` on another machine: they are tied to this TensorRT and this GPU.
ARG L4T_TAG=r36.4.0
FROM nvcr.io/nvidia/l4t-jetpack:${L4T_TAG}

# PyTorch for JetPack 6 comes from NVIDIA's Jetson wheels, not PyPI (PyPI aarch64 wheels are CPU-only).
# Pick the wheel matching your JetPack from https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/
ARG TORCH_WHL=https://developer.download.nvidia.com/compute/redist/jp/v61/pytorch/torch-2.5.0a0+872d972e41.nv24.08.17622132-cp310-cp310-linux_aarch64.whl

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# python3-libnvinfer: TensorRT's python bindings from JetPack (there is no pip TensorRT for Tegra)
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-pip python3-libnvinfer python3-libnvinfer-dev libopenblas0 ffmpeg \
    && rm -rf /var/lib/apt/lists/*
RUN pip3 install --upgrade pip && pip3 install "${TORCH_WHL}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamer ./streamer
COPY calib ./calib
COPY configs ./configs
# streamer/assets is a link to ../assets (Docker copies the link, not its target): the demo clip
# that `bench` and configs/demo.yaml use
COPY assets ./assets
# no [tensorrt] extra: TensorRT comes from python3-libnvinfer above; torch is already installed.
# The core only: `streamer eval` would need the eval extra (scikit-image, SciPy): pip3 install -e '.[eval]'
RUN pip3 install -e . \
    && python3 -c "import tensorrt, torch; print('TensorRT', tensorrt.__version__, 'torch', torch.__version__)"

VOLUME ["/app/engines"]
ENTRYPOINT ["streamer"]
CMD ["--help"]
