-- CreateIndex
CREATE INDEX "job_attempt_job_name_finished_at_idx" ON "job_attempt"("job_name", "finished_at");
