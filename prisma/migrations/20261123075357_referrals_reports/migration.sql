-- CreateEnum
CREATE TYPE "ReferralState" AS ENUM ('OPEN', 'ACCEPTED', 'DECLINED', 'EXPIRED', 'CLOSED');

-- CreateEnum
CREATE TYPE "ReportStatus" AS ENUM ('PENDING', 'OVERDUE', 'UNDER_REVIEW', 'CORRECTION_REQUESTED', 'REPORTED', 'FEE_ONGOING', 'FAILED', 'DEAD', 'NOT_APPLICABLE');

-- CreateTable
CREATE TABLE "referral" (
    "id" TEXT NOT NULL,
    "platform" TEXT NOT NULL,
    "external_id" TEXT NOT NULL,
    "deal_id" TEXT NOT NULL,
    "state" "ReferralState" NOT NULL DEFAULT 'OPEN',
    "title" TEXT NOT NULL,
    "customer_name" TEXT,
    "customer_email" TEXT,
    "estimated_value" INTEGER,
    "currency" TEXT,
    "platform_status" TEXT,
    "platform_substatus" TEXT,
    "e_tag" TEXT,
    "respond_by" TIMESTAMPTZ(3),
    "clock_rule" TEXT,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "responded_at" TIMESTAMPTZ(3),
    "expired_at" TIMESTAMPTZ(3),
    "decline_reason" TEXT,
    "snapshot" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "referral_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "report" (
    "id" TEXT NOT NULL,
    "fact_key" TEXT NOT NULL,
    "deal_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "platform" TEXT NOT NULL,
    "referral_id" TEXT,
    "channel" TEXT NOT NULL,
    "status" "ReportStatus" NOT NULL DEFAULT 'PENDING',
    "data" JSONB NOT NULL,
    "fields" JSONB NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "due_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "billing_key" TEXT,
    "amount_ex_tax" INTEGER,
    "reported_amount" INTEGER,
    "postpone_reason" TEXT,
    "note" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "report_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "alert" (
    "id" TEXT NOT NULL,
    "cause" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "details" JSONB,
    "deal_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "alert_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "referral_deal_id_key" ON "referral"("deal_id");

-- CreateIndex
CREATE INDEX "referral_state_respond_by_idx" ON "referral"("state", "respond_by");

-- CreateIndex
CREATE UNIQUE INDEX "referral_platform_external_id_key" ON "referral"("platform", "external_id");

-- CreateIndex
CREATE UNIQUE INDEX "report_fact_key_key" ON "report"("fact_key");

-- CreateIndex
CREATE INDEX "report_status_due_at_idx" ON "report"("status", "due_at");

-- CreateIndex
CREATE INDEX "report_deal_id_idx" ON "report"("deal_id");

-- CreateIndex
CREATE INDEX "report_billing_key_idx" ON "report"("billing_key");

-- CreateIndex
CREATE UNIQUE INDEX "alert_cause_key" ON "alert"("cause");

-- CreateIndex
CREATE INDEX "alert_created_at_idx" ON "alert"("created_at" DESC);

-- AddForeignKey
ALTER TABLE "referral" ADD CONSTRAINT "referral_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "report" ADD CONSTRAINT "report_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
