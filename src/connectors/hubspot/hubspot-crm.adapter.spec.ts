import { crmDealOf, hubspotBoolean } from './hubspot-crm.adapter';
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
