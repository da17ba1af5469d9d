import { DEAL_STAGES } from '../domain/deal-stage';
import { INVOICE_STATES } from '../domain/invoice-state';
import { DealStage, InvoiceState } from '../generated/prisma/enums';

/** The domain's lists are the database enums (prisma/schema.prisma), value for value. */
describe('domain lists = database enums', () => {
  it('deal stages', () => {
    expect([...DEAL_STAGES].sort()).toEqual(Object.values(DealStage).sort());
  });

  it('invoice states', () => {
    expect([...INVOICE_STATES].sort()).toEqual(Object.values(InvoiceState).sort());
  });
});
