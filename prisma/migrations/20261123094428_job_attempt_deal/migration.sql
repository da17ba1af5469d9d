-- AlterTable
ALTER TABLE "job_attempt" ADD COLUMN     "deal_id" TEXT;

-- CreateIndex
CREATE INDEX "job_attempt_deal_id_finished_at_idx" ON "job_attempt"("deal_id", "finished_at");
