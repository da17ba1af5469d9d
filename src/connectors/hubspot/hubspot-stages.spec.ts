import { crmStageFor, mapCrmStage } from './hubspot-stages';

describe('HubSpot pipeline mapping', () => {
  it('maps the default pipeline (CONTRACT §4)', () => {
    expect(mapCrmStage('default', 'appointmentscheduled')).toBe('APPOINTMENT');
    expect(mapCrmStage('default', 'qualifiedtobuy')).toBe('NEGOTIATING');
    expect(mapCrmStage('default', 'presentationscheduled')).toBe('NEGOTIATING');
    expect(mapCrmStage('default', 'decisionmakerboughtin')).toBe('NEGOTIATING');
    expect(mapCrmStage('default', 'contractsent')).toBe('CONTRACT_SENT');
    expect(mapCrmStage('default', 'closedwon')).toBe('WON');
    expect(mapCrmStage('default', 'closedlost')).toBe('LOST');
    expect(mapCrmStage('default', '122178070')).toBeUndefined();
  });

  it('uses a per-pipeline override when configured', () => {
    const overrides = { sales2: { '1001': 'CONTRACT_SENT', '1002': 'WON' } } as const;
    expect(mapCrmStage('sales2', '1001', overrides)).toBe('CONTRACT_SENT');
    expect(mapCrmStage('sales2', 'contractsent', overrides)).toBeUndefined();
    expect(mapCrmStage('default', 'contractsent', overrides)).toBe('CONTRACT_SENT');
    expect(crmStageFor('sales2', 'WON', overrides)).toBe('1002');
    expect(crmStageFor('default', 'WON', overrides)).toBe('closedwon');
  });
});
