#!/usr/bin/env bash
# Schedules the nightly build on Cloud Scheduler: every night at 03:00 UTC it launches the Flex
# Template (`make template`) with pipeline=nightly. The job reads OUT/LATEST, builds tonight's
# increment, and publishes it itself (verify, promote, LATEST with a generation precondition,
# withdrawn audio deleted, retention) as its last step.
#
#   PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket \
#     SCHEDULER_SA=scheduler@my-project.iam.gserviceaccount.com deploy/nightly_schedule.sh
#
# The service account needs roles/dataflow.developer, and roles/iam.serviceAccountUser on the
# workers' service account. Withdrawals are read from gs://BUCKET/consent/withdrawals.jsonl
# (WITHDRAWALS= to change). A failed launch or job is visible in the Cloud Scheduler job's
# status and in the Dataflow job (its last step fails, LATEST does not move).
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
: "${SCHEDULER_SA:?set SCHEDULER_SA (the service account Cloud Scheduler calls Dataflow as)}"
TEMPLATE="${TEMPLATE:-gs://${BUCKET}/templates/audio-dataset.json}"
UPLOADS="${UPLOADS:-gs://${BUCKET}/uploads}"
NIGHTLY_OUT="${NIGHTLY_OUT:-gs://${BUCKET}/nightly}"
WITHDRAWALS="${WITHDRAWALS:-gs://${BUCKET}/consent/withdrawals.jsonl}"

"${GCLOUD:-gcloud}" scheduler jobs create http audio-dataset-nightly \
  --project "$PROJECT" --location "$REGION" \
  --schedule "0 3 * * *" --time-zone "Etc/UTC" --http-method POST \
  --uri "https://dataflow.googleapis.com/v1b3/projects/${PROJECT}/locations/${REGION}/flexTemplates:launch" \
  --oauth-service-account-email "$SCHEDULER_SA" \
  --oauth-token-scope "https://www.googleapis.com/auth/cloud-platform" \
  --attempt-deadline 600s --max-retry-attempts 1 \
  --message-body "{\"launchParameter\": {\"jobName\": \"audio-dataset-nightly\",
    \"containerSpecGcsPath\": \"${TEMPLATE}\",
    \"parameters\": {\"pipeline\": \"nightly\", \"uploads\": \"${UPLOADS}\",
      \"output\": \"${NIGHTLY_OUT}\", \"config\": \"/template/configs/nightly.yaml\",
      \"set\": \"nightly.withdrawals=${WITHDRAWALS}\"}}}"
