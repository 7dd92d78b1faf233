#!/usr/bin/env bash
# Builds the launcher image and stages the Flex Template spec: what `make template` runs.
#
#   PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket deploy/build_template.sh
#
# IMAGE defaults to REGION-docker.pkg.dev/PROJECT/audio-dataset/launcher:TAG (an Artifact
# Registry repository "audio-dataset" must exist); TEMPLATE to
# gs://BUCKET/templates/audio-dataset.json. BUILDER=cloudbuild (default, no local Docker) or
# docker (build and push locally).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
TAG="${TAG:-$(date -u +%Y%m%dT%H%M%SZ)}"
IMAGE="${IMAGE:-${REGION}-docker.pkg.dev/${PROJECT}/audio-dataset/launcher:${TAG}}"
TEMPLATE="${TEMPLATE:-gs://${BUCKET}/templates/audio-dataset.json}"
BUILDER="${BUILDER:-cloudbuild}"

case "$BUILDER" in
  cloudbuild)
    gcloud builds submit --project "$PROJECT" --region "$REGION" \
      --config deploy/cloudbuild.yaml --substitutions "_IMAGE=${IMAGE}" . ;;
  docker)
    docker build -f deploy/Dockerfile -t "$IMAGE" .
    docker push "$IMAGE" ;;
  *)
    echo "BUILDER must be cloudbuild or docker, not $BUILDER" >&2
    exit 2 ;;
esac

gcloud dataflow flex-template build "$TEMPLATE" --project "$PROJECT" \
  --image "$IMAGE" --sdk-language PYTHON --metadata-file deploy/metadata.json \
  --staging-location "gs://${BUCKET}/staging" --temp-location "gs://${BUCKET}/tmp"
echo "Flex Template $TEMPLATE -> $IMAGE"
