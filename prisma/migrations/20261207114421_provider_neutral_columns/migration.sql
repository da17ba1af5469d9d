-- Provider-neutral storage (issue 11): the invoicing system's and the CRM's ids keep their data
-- under names that do not name a provider. Renames, not drop + add (what `db:diff` proposes for a
-- renamed column), so every row keeps its values. `stripe_customer` (Stripe's customer per e-mail
-- address, remembered past its idempotency window) is a Stripe-only fact and keeps its name.

-- Deal: the invoicing system's customer.
ALTER TABLE "deal" RENAME COLUMN "stripe_customer_id" TO "billing_customer_id";

-- Invoice: attempts at the invoicing system, its customer, its invoice id and number.
ALTER TABLE "invoice" RENAME COLUMN "stripe_attempts" TO "issue_attempts";
ALTER TABLE "invoice" RENAME COLUMN "stripe_customer_id" TO "billing_customer_id";
ALTER TABLE "invoice" RENAME COLUMN "stripe_invoice_id" TO "provider_invoice_id";
ALTER TABLE "invoice" RENAME COLUMN "stripe_number" TO "invoice_number";
ALTER INDEX "invoice_stripe_invoice_id_key" RENAME TO "invoice_provider_invoice_id_key";

-- CRM notes: the CRM's id of the note.
ALTER TABLE "crm_note" RENAME COLUMN "hubspot_note_id" TO "crm_note_id";
