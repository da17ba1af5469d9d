import { Injectable } from '@nestjs/common';

import { Clock } from '../../common/clock';
import { PermanentError, TransientError } from '../../common/errors';
import { newId } from '../../common/ids';
import { LifecycleTrigger } from '../../domain/deal-stage';
import { NormalizedEvent } from '../../domain/normalized-event';
import { Contract, ContractStatus } from '../../generated/prisma/client';
import { addTimeline } from '../../timeline/timeline';
import { findDeal } from '../deal-rows';
import { EventHandler, EventOutcome, LifecycleContext, Tx } from '../lifecycle.types';
import { SettleService } from '../settle.service';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const CONTRACT_RANK: Record<ContractStatus, number> = {
  PENDING: 0,
  CREATING: 1,
  SENT: 2,
  DELIVERED: 3,
  COMPLETED: 4,
  DECLINED: 4,
  VOIDED: 4,
};

/** How long an envelope event for an envelope the hub cannot place yet is retried. */
const UNPLACED_ENVELOPE_GRACE_MS = 10 * 60_000;

/**
 * E-signature envelope events (envelope.sent … envelope.voided): the deal's one contract row moves
 * forward only, and the envelope's fact becomes a stage trigger (a completed envelope wins the deal).
 */
@Injectable()
export class EnvelopeHandler implements EventHandler {
  readonly kinds = [
    'envelope.sent',
    'envelope.delivered',
    'envelope.completed',
    'envelope.declined',
    'envelope.voided',
  ] as const;

  constructor(
    private readonly settler: SettleService,
    private readonly clock: Clock,
  ) {}

  async apply(tx: Tx, ev: NormalizedEvent, ctx: LifecycleContext): Promise<EventOutcome> {
    const at = new Date(ev.occurredAt);
    const envelopeId = ev.subject.envelopeId;
    if (!envelopeId) throw new PermanentError('envelope event without an envelope id');
    type ContractRef = Pick<Contract, 'id' | 'dealId' | 'envelopeId' | 'status'>;
    let [contract]: (ContractRef | undefined)[] = await tx.$queryRaw<ContractRef[]>`
      SELECT id, deal_id AS "dealId", envelope_id AS "envelopeId", status::text AS status
        FROM contract WHERE envelope_id = ${envelopeId}`;
    if (!contract && ev.subject.dealId) {
      contract =
        (await tx.contract.findUnique({ where: { dealId: ev.subject.dealId } })) ?? undefined;
      // The deal's envelope is the one the hub made: an envelope that only names the deal (its
      // custom field) while the hub's envelope exists or is being made never takes the deal over.
      // The hub's own envelope carries its contract id, and may arrive before its id is recorded.
      const foreign =
        contract &&
        (contract.envelopeId
          ? contract.envelopeId !== envelopeId
          : str(ev.data.contractId) !== contract.id);
      if (contract && foreign) {
        const why = contract.envelopeId
          ? `the deal's envelope is ${contract.envelopeId}`
          : `the hub's own envelope for this deal is still being made`;
        await addTimeline(tx, {
          dealId: contract.dealId,
          kind: 'contract',
          message: `envelope ${envelopeId} (${ev.kind.slice('envelope.'.length)}) names this deal but was not made by the hub; ignored: ${why}`,
          cause: ctx.cause,
          eventId: ctx.eventId,
          at,
          details: { envelopeId, foreign: true },
        });
        return {
          dealId: contract.dealId,
          ignored: `envelope ${envelopeId} is not the deal's envelope: ${why}`,
        };
      }
    }
    const dealId = contract?.dealId ?? ev.subject.dealId;
    const deal = dealId ? await findDeal(tx, { dealId }) : undefined;
    if (!deal) {
      // Connect can call before the transaction recording a new envelope id commits: while an
      // envelope creation is in flight, an unplaced envelope is retried for a while.
      const inFlight = await tx.contract.count({
        where: { envelopeId: null, status: { in: ['PENDING', 'CREATING'] } },
      });
      if (inFlight > 0 && this.clock.nowMs() - at.getTime() < UNPLACED_ENVELOPE_GRACE_MS) {
        throw new TransientError(`no deal known yet for envelope ${envelopeId}`);
      }
      return { ignored: `envelope ${envelopeId} does not belong to a hub deal` };
    }
    const next: Partial<Record<string, ContractStatus>> = {
      'envelope.sent': 'SENT',
      'envelope.delivered': 'DELIVERED',
      'envelope.completed': 'COMPLETED',
      'envelope.declined': 'DECLINED',
      'envelope.voided': 'VOIDED',
    };
    const status = next[ev.kind] as ContractStatus;
    if (!contract) {
      // An envelope the hub did not create (sent outside it): its dates as the update path sets them.
      await tx.contract.create({
        data: {
          id: newId('ctr'),
          dealId: deal.id,
          envelopeId,
          status,
          sentAt: status === 'SENT' ? at : null,
          completedAt: status === 'COMPLETED' ? at : null,
          endedAt: status === 'DECLINED' || status === 'VOIDED' ? at : null,
        },
      });
    } else if (CONTRACT_RANK[status] > CONTRACT_RANK[contract.status] || !contract.envelopeId) {
      const moves = CONTRACT_RANK[status] > CONTRACT_RANK[contract.status];
      await tx.$executeRaw`
        UPDATE contract
           SET envelope_id = ${envelopeId}, updated_at = clock_timestamp(),
               status = CASE WHEN ${moves}::boolean THEN ${status}::"ContractStatus" ELSE status END,
               sent_at = CASE WHEN ${status === 'SENT'}::boolean THEN ${at}::timestamptz ELSE sent_at END,
               completed_at = CASE WHEN ${status === 'COMPLETED'}::boolean THEN ${at}::timestamptz
                                   ELSE completed_at END,
               ended_at = CASE WHEN ${status === 'DECLINED' || status === 'VOIDED'}::boolean
                               THEN ${at}::timestamptz ELSE ended_at END
         WHERE id = ${contract.id}`;
    }
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'contract',
      message: `envelope ${envelopeId} ${ev.kind.slice('envelope.'.length)}`,
      cause: ctx.cause,
      eventId: ctx.eventId,
      at,
    });
    // Nothing above changed the deal row: settle starts from the locked read, and records the
    // envelope's trigger in the statement that reads the deal's triggers.
    await this.settler.settle(tx, deal.id, ctx, {
      locked: deal,
      add:
        ev.kind !== 'envelope.delivered'
          ? { trigger: { type: ev.kind } as LifecycleTrigger, at }
          : undefined,
    });
    return { dealId: deal.id };
  }
}
