-- AlterTable
ALTER TABLE "stripe_customer" ADD COLUMN     "email" TEXT,
ADD COLUMN     "name" TEXT;

-- CreateIndex
CREATE INDEX "stripe_customer_stripe_customer_id_idx" ON "stripe_customer"("stripe_customer_id");

-- Hand-written: customers made before the columns existed were made with their key's e-mail (the
-- name is unknown: the next invoice gives the customer the deal's name once).
UPDATE "stripe_customer" SET "email" = substr("key", 7) WHERE "key" LIKE 'email:%';
