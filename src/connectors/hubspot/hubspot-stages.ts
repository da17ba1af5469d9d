import { CrmTarget } from '../../domain/deal-stage';

/** The default HubSpot pipeline's stage ids (provider-facts §2.3) → hub stages (CONTRACT §4). */
export const DEFAULT_PIPELINE_STAGES: Readonly<Record<string, CrmTarget>> = {
  appointmentscheduled: 'APPOINTMENT',
  qualifiedtobuy: 'NEGOTIATING',
  presentationscheduled: 'NEGOTIATING',
  decisionmakerboughtin: 'NEGOTIATING',
  contractsent: 'CONTRACT_SENT',
  closedwon: 'WON',
  closedlost: 'LOST',
};

/** HUBSPOT_PIPELINE_STAGES: per pipeline id, its stage ids → hub stages. */
export type PipelineOverrides = Readonly<Record<string, Readonly<Record<string, CrmTarget>>>>;

/** The stage table of a pipeline: its override when configured, else the default pipeline's. */
function stagesOf(
  pipeline: string | null | undefined,
  overrides: PipelineOverrides,
): Readonly<Record<string, CrmTarget>> {
  return (pipeline && overrides[pipeline]) || DEFAULT_PIPELINE_STAGES;
}

/**
 * Maps a HubSpot stage id to a hub stage: the pipeline's override when configured
 * (HUBSPOT_PIPELINE_STAGES), else the default pipeline's mapping. Undefined for unmapped stages.
 */
export function mapCrmStage(
  pipeline: string | null | undefined,
  crmStage: string,
  overrides: PipelineOverrides = {},
): CrmTarget | undefined {
  return stagesOf(pipeline, overrides)[crmStage];
}

/** The CRM stage id to write back for a hub stage in a pipeline (e.g. WON → closedwon). */
export function crmStageFor(
  pipeline: string | null | undefined,
  target: CrmTarget,
  overrides: PipelineOverrides = {},
): string | undefined {
  return Object.entries(stagesOf(pipeline, overrides)).find(([, t]) => t === target)?.[0];
}
