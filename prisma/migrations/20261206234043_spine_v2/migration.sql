-- AlterTable
ALTER TABLE "webhook_event" ADD COLUMN     "attempt_base" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "outbox" ADD COLUMN     "available_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- AlterTable
ALTER TABLE "billing_item" ADD COLUMN     "next_due_at" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "billing_item_next_due_at_idx" ON "billing_item"("next_due_at");

-- Hand-written (partial indexes Prisma's schema cannot express; docs/decisions/0007).
-- A lane's waiting events, in arrival order: what a lane drain reads.
CREATE INDEX "webhook_event_lane_received_idx" ON "webhook_event"("subject_key", "id")
  WHERE "status" = 'RECEIVED';
-- Invoices the issuer still has Stripe work for (attention list, recovery sweep).
CREATE INDEX "invoice_open_updated_at_idx" ON "invoice"("updated_at")
  WHERE "state" IN ('PENDING', 'CREATING', 'CREATED');

-- Monthly items made before next_due_at existed: due now, so the worker's clock looks at each
-- once and sets its real next date (billing is by unique billing key, so looking is harmless).
UPDATE "billing_item" SET "next_due_at" = CURRENT_TIMESTAMP
  WHERE "trigger" = 'monthly' AND NOT "removed";

-- Events waiting from before lanes existed: each its own lane, so a drain can find it.
UPDATE "webhook_event" SET "subject_key" = 'event:' || "id"
  WHERE "status" IN ('RECEIVED', 'FAILED') AND "subject_key" IS NULL;
