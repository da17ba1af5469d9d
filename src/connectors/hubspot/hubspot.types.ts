/** A HubSpot deal as the hub reads it (CONTRACT §3.2); property values are HubSpot's strings. */
export interface CrmDealSnapshot {
  id: string;
  properties: {
    dealname?: string | null;
    amount?: string | null;
    deal_currency_code?: string | null;
    dealstage?: string | null;
    pipeline?: string | null;
    closedate?: string | null;
    closeloop_billing_plan?: string | null;
    closeloop_referral_platform?: string | null;
    closeloop_referral_id?: string | null;
    closeloop_cosell?: string | null;
    description?: string | null;
  };
  contact?: {
    id: string;
    email?: string | null;
    firstname?: string | null;
    lastname?: string | null;
    phone?: string | null;
  };
  company?: {
    id: string;
    name?: string | null;
    address?: string | null;
    address2?: string | null;
    city?: string | null;
    state?: string | null;
    zip?: string | null;
    country?: string | null;
  };
  archived?: boolean;
}
