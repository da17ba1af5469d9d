-- AlterTable
ALTER TABLE "webhook_event" ADD COLUMN     "purged_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "report" ADD COLUMN     "channel_succeeded_at" TIMESTAMPTZ(3);

-- Hand-written (partial indexes Prisma's schema cannot express; docs/decisions/0010-retention.md).
-- IF NOT EXISTS: on a large database they can be built CONCURRENTLY by hand first, under these names.
-- The retention purge's batches: events it may still purge (final status, payload not yet purged),
-- oldest first. Purged rows leave it, so a purge never walks past what it already purged.
CREATE INDEX IF NOT EXISTS "webhook_event_purgeable_received_at_idx" ON "webhook_event"("received_at")
  WHERE "purged_at" IS NULL AND "status" IN ('PROCESSED', 'IGNORED', 'DEAD');
-- The dashboard's last success of an outbound job: one index step back from the newest, however
-- many failures came after it (the webhooks queue's per-event attempts stay out of it).
CREATE INDEX IF NOT EXISTS "job_attempt_connector_success_idx" ON "job_attempt"("job_name", "finished_at")
  WHERE "outcome" = 'SUCCEEDED' AND "queue" <> 'webhooks';
-- The last success of a report channel (partner-center, webhook).
CREATE INDEX IF NOT EXISTS "report_channel_succeeded_at_idx" ON "report"("channel", "channel_succeeded_at")
  WHERE "channel_succeeded_at" IS NOT NULL;

-- Reports delivered before the column existed: the newest successful ReportDeliver attempt of each
-- (its job id is report|<report id>), which is what the dashboard read until now.
UPDATE "report" r SET "channel_succeeded_at" = s.at
  FROM (SELECT substr(ja.job_id, 8) AS report_id, max(ja.finished_at) AS at
          FROM "job_attempt" ja
         WHERE ja.job_name = 'ReportDeliver' AND ja.outcome = 'SUCCEEDED'
           AND ja.job_id LIKE 'report|%'
         GROUP BY 1) s
 WHERE r.id = s.report_id;
