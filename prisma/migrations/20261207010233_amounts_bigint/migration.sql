-- AlterTable
ALTER TABLE "deal" ALTER COLUMN "amount" SET DATA TYPE BIGINT;

-- AlterTable
ALTER TABLE "billing_item" ALTER COLUMN "amount" SET DATA TYPE BIGINT;

-- AlterTable
ALTER TABLE "invoice" ALTER COLUMN "amount" SET DATA TYPE BIGINT,
ALTER COLUMN "tax_amount" SET DATA TYPE BIGINT,
ALTER COLUMN "total" SET DATA TYPE BIGINT,
ALTER COLUMN "amount_paid" SET DATA TYPE BIGINT;

-- AlterTable
ALTER TABLE "referral" ALTER COLUMN "estimated_value" SET DATA TYPE BIGINT;

-- AlterTable
ALTER TABLE "report" ALTER COLUMN "amount_ex_tax" SET DATA TYPE BIGINT,
ALTER COLUMN "reported_amount" SET DATA TYPE BIGINT;

-- Hand-written (a partial index Prisma's schema cannot express; docs/decisions/0002).
-- Won deals without a billing plan: the attention list's not_billable reason reads only these.
CREATE INDEX "deal_won_without_plan_idx" ON "deal"("id")
  WHERE "billing_plan" IS NULL AND "stage" IN ('WON', 'DELIVERED', 'CLOSED');
