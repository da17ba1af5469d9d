import { loadConfig } from '../../config/app-config';
import { HubspotCrmAdapter, crmDealOf, hubspotBoolean } from './hubspot-crm.adapter';
import { HubspotClient } from './hubspot.client';
import { CrmDealSnapshot } from './hubspot.types';

const snapshot = (overrides: Partial<CrmDealSnapshot['properties']> = {}): CrmDealSnapshot => ({
  id: '53000000001',
  properties: {
    dealname: 'Contoso data platform',
    amount: '1200000',
    deal_currency_code: 'JPY',
    dealstage: 'qualifiedtobuy',
    pipeline: 'default',
    closedate: '2027-03-30T15:00:00.000Z',
    closeloop_cosell: 'true',
    description: 'Migrate the warehouse to Azure',
    ...overrides,
  },
  contact: {
    id: '51000000001',
    email: 'hanako@contoso.example',
    firstname: 'Hanako',
    lastname: 'Yamada',
    phone: '+81-3-0000-0000',
  },
  company: {
    id: '52000000001',
    name: 'Contoso K.K.',
    address: '1-2-3 Marunouchi',
    address2: null,
    city: 'Chiyoda-ku',
    state: 'Tokyo',
    zip: '100-0005',
    country: 'Japan',
  },
});

describe('a HubSpot deal in the hub words (co-sell fields)', () => {
  it('reads closeloop_cosell, closedate, the description, the contact phone and the company address', () => {
    expect(crmDealOf(snapshot())).toMatchObject({
      id: '53000000001',
      cosell: true,
      closeDate: '2027-03-30T15:00:00.000Z',
      description: 'Migrate the warehouse to Azure',
      contact: {
        email: 'hanako@contoso.example',
        firstName: 'Hanako',
        lastName: 'Yamada',
        phone: '+81-3-0000-0000',
      },
      companyName: 'Contoso K.K.',
      companyAddress: {
        line1: '1-2-3 Marunouchi',
        line2: null,
        city: 'Chiyoda-ku',
        state: 'Tokyo',
        postalCode: '100-0005',
        country: 'Japan',
      },
    });
  });

  it('takes only the checkbox value "true" as a co-sell request', () => {
    expect(crmDealOf(snapshot({ closeloop_cosell: 'false' })).cosell).toBe(false);
    expect(crmDealOf(snapshot({ closeloop_cosell: null })).cosell).toBe(false);
    expect(hubspotBoolean(' TRUE ')).toBe(true);
    expect(hubspotBoolean('yes')).toBe(false);
    expect(hubspotBoolean(undefined)).toBe(false);
  });

  it('has no company address without a company', () => {
    expect(crmDealOf({ ...snapshot(), company: undefined }).companyAddress).toBeNull();
  });
});

describe('HubspotCrmAdapter.writeBack', () => {
  it('writes the co-sell referral the hub created onto the deal, beside the totals', async () => {
    const updates: [string, Record<string, string>][] = [];
    const client = {
      updateDeal: (id: string, properties: Record<string, string>) => {
        updates.push([id, properties]);
        return Promise.resolve();
      },
    } as unknown as HubspotClient;
    const adapter = new HubspotCrmAdapter(client, loadConfig({}));
    await adapter.writeBack('53000000001', {
      invoicedAmount: 0,
      paidAmount: 0,
      syncStatus: 'in_sync',
      referral: { platform: 'partner-center', id: 'pc-1' },
    });
    await adapter.writeBack('53000000001', {
      invoicedAmount: 5,
      paidAmount: 0,
      syncStatus: 'billing',
    });
    expect(updates).toEqual([
      [
        '53000000001',
        {
          closeloop_invoiced_amount: '0',
          closeloop_paid_amount: '0',
          closeloop_sync_status: 'in_sync',
          closeloop_referral_platform: 'partner-center',
          closeloop_referral_id: 'pc-1',
        },
      ],
      [
        '53000000001',
        {
          closeloop_invoiced_amount: '5',
          closeloop_paid_amount: '0',
          closeloop_sync_status: 'billing',
        },
      ],
    ]);
  });
});
