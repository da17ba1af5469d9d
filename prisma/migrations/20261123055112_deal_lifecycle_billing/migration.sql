-- CreateEnum
CREATE TYPE "DealStage" AS ENUM ('REFERRED', 'APPOINTMENT', 'NEGOTIATING', 'CONTRACT_SENT', 'WON', 'DELIVERED', 'CLOSED', 'LOST', 'DECLINED', 'EXPIRED');

-- CreateEnum
CREATE TYPE "InvoiceState" AS ENUM ('PENDING', 'CREATING', 'CREATED', 'POSTED', 'PAID', 'VOID', 'UNCOLLECTIBLE');

-- CreateEnum
CREATE TYPE "ContractStatus" AS ENUM ('PENDING', 'CREATING', 'SENT', 'DELIVERED', 'COMPLETED', 'DECLINED', 'VOIDED');

-- CreateTable
CREATE TABLE "deal" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "stage" "DealStage" NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 0,
    "source" TEXT NOT NULL,
    "crm_deal_id" TEXT,
    "crm_pipeline" TEXT,
    "crm_stage" TEXT,
    "crm_event_at" TIMESTAMPTZ(3),
    "referral_platform" TEXT,
    "referral_id" TEXT,
    "customer_name" TEXT,
    "customer_email" TEXT,
    "contact_name" TEXT,
    "company_name" TEXT,
    "currency" TEXT NOT NULL DEFAULT 'jpy',
    "amount" INTEGER,
    "time_zone" TEXT,
    "billing_plan" JSONB,
    "plan_error" TEXT,
    "stripe_customer_id" TEXT,
    "won_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "closed_at" TIMESTAMPTZ(3),
    "lost_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_on" TEXT,

    CONSTRAINT "deal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "stage_trigger" (
    "id" BIGSERIAL NOT NULL,
    "deal_id" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "type" TEXT NOT NULL,
    "target" "DealStage",
    "event_id" TEXT,
    "cause" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "stage_trigger_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "billing_item" (
    "id" TEXT NOT NULL,
    "deal_id" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "percent" DOUBLE PRECISION,
    "tax_rate_percent" DOUBLE PRECISION NOT NULL,
    "expected_invoice_date" TEXT,
    "acceptance_days" INTEGER,
    "silent_approval" BOOLEAN NOT NULL DEFAULT false,
    "start_on" TEXT,
    "months" INTEGER,
    "position" INTEGER NOT NULL,
    "added_by" TEXT NOT NULL,
    "removed" BOOLEAN NOT NULL DEFAULT false,
    "submitted_at" TIMESTAMPTZ(3),
    "acceptance_due_at" TIMESTAMPTZ(3),
    "accepted_at" TIMESTAMPTZ(3),
    "accepted_by" TEXT,
    "rejected_at" TIMESTAMPTZ(3),
    "rejection_reason" TEXT,
    "progress_percent" INTEGER NOT NULL DEFAULT 0,
    "billed_percent" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "billing_item_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "invoice" (
    "id" TEXT NOT NULL,
    "billing_key" TEXT NOT NULL,
    "deal_id" TEXT NOT NULL,
    "item_key" TEXT NOT NULL,
    "period" TEXT,
    "rebill" INTEGER NOT NULL DEFAULT 0,
    "amount" INTEGER NOT NULL,
    "tax_rate_percent" DOUBLE PRECISION NOT NULL,
    "tax_amount" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "state" "InvoiceState" NOT NULL DEFAULT 'PENDING',
    "stripe_attempts" INTEGER NOT NULL DEFAULT 0,
    "stripe_customer_id" TEXT,
    "stripe_invoice_id" TEXT,
    "stripe_number" TEXT,
    "hosted_invoice_url" TEXT,
    "invoice_pdf_url" TEXT,
    "total" INTEGER,
    "amount_paid" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "posted_at" TIMESTAMPTZ(3),
    "paid_at" TIMESTAMPTZ(3),
    "voided_at" TIMESTAMPTZ(3),

    CONSTRAINT "invoice_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "contract" (
    "id" TEXT NOT NULL,
    "deal_id" TEXT NOT NULL,
    "envelope_id" TEXT,
    "status" "ContractStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "sent_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contract_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "timeline_entry" (
    "id" BIGSERIAL NOT NULL,
    "deal_id" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "kind" TEXT NOT NULL,
    "event_id" TEXT,
    "from_stage" "DealStage",
    "to_stage" "DealStage",
    "message" TEXT NOT NULL,
    "cause" TEXT NOT NULL,
    "details" JSONB,

    CONSTRAINT "timeline_entry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "idempotency_record" (
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "response" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "idempotency_record_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "crm_note" (
    "key" TEXT NOT NULL,
    "deal_id" TEXT NOT NULL,
    "hubspot_note_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "crm_note_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE UNIQUE INDEX "deal_crm_deal_id_key" ON "deal"("crm_deal_id");

-- CreateIndex
CREATE INDEX "deal_stage_idx" ON "deal"("stage");

-- CreateIndex
CREATE INDEX "deal_created_at_id_idx" ON "deal"("created_at" DESC, "id" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "deal_referral_platform_referral_id_key" ON "deal"("referral_platform", "referral_id");

-- CreateIndex
CREATE INDEX "stage_trigger_deal_id_at_idx" ON "stage_trigger"("deal_id", "at");

-- CreateIndex
CREATE UNIQUE INDEX "stage_trigger_deal_id_event_id_type_key" ON "stage_trigger"("deal_id", "event_id", "type");

-- CreateIndex
CREATE INDEX "billing_item_acceptance_due_at_idx" ON "billing_item"("acceptance_due_at");

-- CreateIndex
CREATE UNIQUE INDEX "billing_item_deal_id_key_key" ON "billing_item"("deal_id", "key");

-- CreateIndex
CREATE UNIQUE INDEX "invoice_billing_key_key" ON "invoice"("billing_key");

-- CreateIndex
CREATE UNIQUE INDEX "invoice_stripe_invoice_id_key" ON "invoice"("stripe_invoice_id");

-- CreateIndex
CREATE INDEX "invoice_deal_id_item_key_idx" ON "invoice"("deal_id", "item_key");

-- CreateIndex
CREATE UNIQUE INDEX "contract_deal_id_key" ON "contract"("deal_id");

-- CreateIndex
CREATE UNIQUE INDEX "contract_envelope_id_key" ON "contract"("envelope_id");

-- CreateIndex
CREATE INDEX "timeline_entry_deal_id_id_idx" ON "timeline_entry"("deal_id", "id");

-- AddForeignKey
ALTER TABLE "stage_trigger" ADD CONSTRAINT "stage_trigger_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "billing_item" ADD CONSTRAINT "billing_item_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "invoice" ADD CONSTRAINT "invoice_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contract" ADD CONSTRAINT "contract_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "timeline_entry" ADD CONSTRAINT "timeline_entry_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Wake the outbox relays as soon as a transaction that wrote jobs commits (NOTIFY is delivered
-- at commit, once per statement), instead of waiting for their next poll (docs/decisions/0004).
CREATE FUNCTION closeloop_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('closeloop_outbox', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON "outbox"
  FOR EACH STATEMENT EXECUTE FUNCTION closeloop_outbox_notify();
