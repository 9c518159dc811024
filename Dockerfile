# courtscribe images. Two targets from one file:
#   docker build --target cpu -t courtscribe:cpu .      # the embedded default (Whisper base + FSMN/silero VAD + CAM++), offline
#   docker build --target gpu -t courtscribe:gpu .      # CUDA torch, torchaudio, pyannote.audio, FunASR models baked in
#   docker run -p 8000:8000 -v courtscribe-data:/data \
#       -e COURTSCRIBE_ALLOWED_HOSTS='["asr.court.local","10.1.2.3"]' courtscribe:cpu
#   (the names clients reach the host by: inside a container the server knows only the container's)
#   docker run --gpus all -p 8000:8000 courtscribe:gpu courtscribe serve --cluster ray \
#       --serve-config /app/courtscribe/cluster/configs/serve-gpu.yaml
# Both images also run as Ray nodes (KubeRay: deploy/kuberay-rayservice.yaml); Ray comes from the lock.
FROM python:3.11-slim-bookworm AS base
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    COURTSCRIBE_DATA_DIR=/data COURTSCRIBE_MODEL_CACHE_DIR=/models COURTSCRIBE_HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 MODELSCOPE_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 RAY_USAGE_STATS_ENABLED=0
RUN apt-get update && apt-get install -y --no-install-recommends build-essential libsndfile1 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# ---- CPU image: the hash-checked lock (torch==2.13.0+cpu from PyTorch's CPU index) ----------------
FROM base AS cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps --extra-index-url "$TORCH_INDEX_URL" -r requirements.lock
COPY pyproject.toml README.md ./
COPY courtscribe ./courtscribe
RUN pip install --no-deps --no-build-isolation . && courtscribe models verify --embedded
RUN useradd --system --home /app courtscribe && mkdir -p /data && chown -R courtscribe /data /models
USER courtscribe
EXPOSE 8000
CMD ["courtscribe", "serve"]

# ---- GPU image: the same lock, then CUDA torch + torchaudio + pyannote.audio over it, and the -----
# production FunASR models fetched from ModelScope at build time (ids and revisions as build args).
FROM cpu AS gpu
USER root
ARG CUDA_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_VERSION=2.13.0
ARG PARAFORMER_STREAMING_ID=iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online
ARG PARAFORMER_ID=iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch
ARG PUNC_ID=iic/punc_ct-transformer_cn-en-common-vocab471067-large
ARG VAD_ID=iic/speech_fsmn_vad_zh-cn-16k-common-pytorch
ARG CAMPP_ID=iic/speech_campplus_sv_zh-cn_16k-common
ARG MODEL_REVISION=v2.0.4
ENV COURTSCRIBE_MODEL_DIR=/models/production COURTSCRIBE_ENGINE=funasr COURTSCRIBE_DEVICE=cuda
RUN pip install --index-url "$CUDA_INDEX_URL" "torch==${TORCH_VERSION}" torchaudio \
    && pip install --no-deps --no-build-isolation ".[gpu]" && pip install "pyannote.audio>=3.1"
RUN mkdir -p /models/production \
    && courtscribe models fetch paraformer-zh-streaming --model-id "$PARAFORMER_STREAMING_ID" --revision "$MODEL_REVISION" \
    && courtscribe models fetch paraformer-zh --model-id "$PARAFORMER_ID" --revision "$MODEL_REVISION" \
    && courtscribe models fetch ct-punc --model-id "$PUNC_ID" --revision "$MODEL_REVISION" \
    && courtscribe models fetch fsmn-vad --model-id "$VAD_ID" --revision "$MODEL_REVISION" \
    && courtscribe models fetch cam++ --model-id "$CAMPP_ID" --revision v2.0.2 \
    && chown -R courtscribe /models
USER courtscribe
CMD ["courtscribe", "serve", "--engine", "funasr"]
