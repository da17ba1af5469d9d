-- AlterEnum
-- This migration adds more than one value to an enum.
-- With PostgreSQL versions 11 and earlier, this is not possible
-- in a single migration. This can be worked around by creating
-- multiple migrations, each migration adding only one value to
-- the enum.


ALTER TYPE "ReferralState" ADD VALUE 'IN_EVALUATION';
ALTER TYPE "ReferralState" ADD VALUE 'SKIPPED';
ALTER TYPE "ReferralState" ADD VALUE 'FAILED';

-- AlterTable
ALTER TABLE "deal" ADD COLUMN     "close_date" TEXT,
ADD COLUMN     "cosell" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "cosell_requested_at" TIMESTAMPTZ(3),
ADD COLUMN     "loss_proposal" TEXT,
ADD COLUMN     "loss_proposed_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "billing_item" ADD COLUMN     "end_month" TEXT,
ADD COLUMN     "monthly_changes" JSONB;

-- AlterTable
ALTER TABLE "referral" ADD COLUMN     "direction" TEXT NOT NULL DEFAULT 'inbound',
ADD COLUMN     "platform_created_at" TIMESTAMPTZ(3),
ADD COLUMN     "status_reason" TEXT;

-- AlterTable
ALTER TABLE "report" ADD COLUMN     "not_before" TIMESTAMPTZ(3);

-- PRONI アイミツ goes by two names and is one platform (CONTRACT §3.5): rows written under `proni`
-- take the canonical name `aimitsu`, unless the same referral already exists under it.
UPDATE "referral" r SET "platform" = 'aimitsu'
 WHERE lower(r."platform") = 'proni'
   AND NOT EXISTS (SELECT 1 FROM "referral" o WHERE o."platform" = 'aimitsu' AND o."external_id" = r."external_id");
UPDATE "deal" d SET "referral_platform" = 'aimitsu'
 WHERE lower(d."referral_platform") = 'proni'
   AND NOT EXISTS (SELECT 1 FROM "deal" o WHERE o."referral_platform" = 'aimitsu' AND o."referral_id" = d."referral_id");
UPDATE "report" SET "platform" = 'aimitsu' WHERE lower("platform") = 'proni';
