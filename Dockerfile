# courtscribe CPU image: the embedded default (Whisper base + silero/FSMN VAD + resemblyzer), offline.
#   docker build -t courtscribe .
#   docker run -p 8000:8000 -v courtscribe-data:/data courtscribe
# The GPU image (CUDA torch, torchaudio, pyannote.audio, FunASR models baked in from ModelScope ids)
# is built from this file with --build-arg EXTRAS=gpu once the production engine lands.
FROM python:3.11-slim-bookworm

# torch==2.13.0+cpu in requirements.lock comes from PyTorch's CPU wheel index.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    COURTSCRIBE_DATA_DIR=/data COURTSCRIBE_MODEL_CACHE_DIR=/models COURTSCRIBE_HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 MODELSCOPE_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0

RUN apt-get update && apt-get install -y --no-install-recommends build-essential libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps --extra-index-url "$TORCH_INDEX_URL" -r requirements.lock
COPY pyproject.toml README.md ./
COPY courtscribe ./courtscribe
RUN pip install --no-deps --no-build-isolation . && courtscribe models verify --embedded

RUN useradd --system --home /app courtscribe && mkdir -p /data && chown -R courtscribe /data /models
USER courtscribe
EXPOSE 8000
CMD ["courtscribe", "serve"]
